# Copyright (c) idalloc authors
#
# G1 under load: a crash loop.  In every cycle several psql clients
# allocate as fast as they can (idalloc_one and idalloc_batch; autocommit,
# rolled back transactions, INSERT ... RETURNING with synchronous_commit =
# off) from
#   tiny     block 3: a block advance every few IDs
#   normal   block 1000
#   cached   block 100, cache 50: per-backend cached ranges
#   default  block 200000
# and at a random moment the server goes down: pg_ctl stop -m immediate,
# kill -9 of a random backend (or of an auxiliary process; the postmaster
# crash-restarts by itself), or now and then a clean fast stop.  Every ID a
# client received (printed as a tagged line, see parse_tagged_ids) is
# collected; after each restart the first ID of every allocator must be
# above all of them, and at the end no ID may have been received twice.
#
# The same file is the long form (make soak):
#   IDALLOC_CRASH_CYCLES   cycles (default 6)
#   IDALLOC_CRASH_SECONDS  no new cycle after this many seconds (default 90)
#   IDALLOC_CRASH_CLIENTS  clients per cycle (default 4)
#   IDALLOC_SEED           random seed (default: time; printed)
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use IdallocTest;
use List::Util qw(shuffle);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $max_cycles = $ENV{IDALLOC_CRASH_CYCLES}  // 6;
my $max_secs   = $ENV{IDALLOC_CRASH_SECONDS} // 90;
my $nclients   = $ENV{IDALLOC_CRASH_CLIENTS} // 4;
my $seed       = $ENV{IDALLOC_SEED}          // (time() ^ $$);
srand($seed);
note "crash loop: up to $max_cycles cycles / $max_secs s, $nclients clients, seed $seed";

my $node = idalloc_node(
	'crashloop',
	conf => "restart_after_crash = on\nmax_connections = "
	  . ($nclients + 20) . "\n",
	sql => q{SELECT idalloc_create('tiny', block => 3);
	         SELECT idalloc_create('normal', block => 1000);
	         SELECT idalloc_create('cached', block => 100, cache => 50);
	         CREATE TABLE sink (id bigint);});
my @allocators = qw(tiny normal cached default);

my $dir = PostgreSQL::Test::Utils::tempdir;
my $ids = IdallocTest::IdSet->new;

# client-side errors that a server going down explains
my %expected_state = map { ($_ => 1) } qw(57P01 57P02 57P03 08006 08003);

sub pick { return $_[ int(rand(@_)) ]; }

# the SQL argument list that names $alloc ('' for default)
sub arg { my ($alloc) = @_; return $alloc eq 'default' ? '' : "'$alloc'"; }

sub one_stmt
{
	my ($alloc, $n) = @_;
	my $call = 'idalloc_one(' . arg($alloc) . ')';
	return "SELECT 'I', '$alloc', $call, 'E'"
	  . ($n > 1 ? " FROM generate_series(1, $n)" : '') . ';';
}

sub batch_stmt
{
	my ($alloc, $n) = @_;
	my $args = $alloc eq 'default' ? $n : "'$alloc', $n";
	return "SELECT 'B', '$alloc', $n, b.start_id, b.end_id, 'E' FROM idalloc_batch($args) b;";
}

# one random unit of work (one or more lines)
sub random_work
{
	my $alloc = pick(@allocators);
	my $r     = rand();
	return one_stmt($alloc, 1) if $r < 0.40;
	return one_stmt($alloc, 1 + int(rand(8))) if $r < 0.55;
	# batches: small, or larger than tiny's and cached's blocks
	return batch_stmt($alloc, 1 + int(rand(rand() < 0.8 ? 20 : 300)))
	  if $r < 0.75;
	if ($r < 0.90)
	{
		return join("\n",
			'BEGIN;',
			one_stmt($alloc, 1 + int(rand(4))),
			batch_stmt(pick(@allocators), 1 + int(rand(10))),
			'ROLLBACK;');
	}
	my $call = 'idalloc_one(' . arg($alloc) . ')';
	return "INSERT INTO sink SELECT $call FROM generate_series(1, "
	  . (1 + int(rand(5)))
	  . ") RETURNING 'I', '$alloc', id, 'E';";
}

# A client's script: long enough to outlast the longest wait before the
# crash (a psql client runs 10000 or more of these per second).
sub write_script
{
	my ($file, $client) = @_;
	my @sql = ('\set VERBOSITY sqlstate');
	# half of the clients run with synchronous_commit = off throughout,
	# the others switch it now and then
	push @sql, 'SET synchronous_commit = off;' if $client % 2;
	for my $i (1 .. 60000)
	{
		push @sql, random_work();
		push @sql,
		  'SET synchronous_commit = ' . pick(qw(on off local)) . ';'
		  if !($client % 2) && rand() < 0.01;
	}
	open my $fh, '>', $file or die "open $file: $!";
	print $fh join("\n", @sql), "\n";
	close $fh;
	return;
}

# pids of the backends of this cycle's clients
sub client_pids
{
	my ($cycle) = @_;
	return lines($node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'crashloop_c${cycle}_%'"));
}

# ... once all of them are connected
sub wait_for_clients
{
	my ($cycle) = @_;
	for (1 .. 300)
	{
		my @pids = client_pids($cycle);
		return @pids if @pids >= $nclients;
		usleep(100_000);
	}
	return;
}

# Take the server down (and bring it back) the way $how says.
sub crash
{
	my ($how, $client_pids) = @_;
	if ($how eq 'immediate' || $how eq 'fast')
	{
		$node->stop($how);
		$node->start;
		return "pg_ctl stop -m $how";
	}
	my ($pid, $what);
	if ($how eq 'kill9')
	{
		$pid  = pick(@$client_pids);
		$what = 'client backend';
	}
	else
	{
		($pid, $what) = split /\|/,
		  $node->safe_psql('postgres',
			q{SELECT pid, backend_type FROM pg_stat_activity
			   WHERE backend_type IN ('checkpointer', 'walwriter', 'background writer',
			                          'autovacuum launcher')
			   ORDER BY random() LIMIT 1});
	}
	my $offset = -s $node->logfile;
	kill('KILL', $pid) or die "kill -9 $pid ($what): $!";
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
	wait_for_server($node) or die 'server did not come back after kill -9';
	return "kill -9 of the $what $pid";
}

write_script("$dir/client$_.sql", $_) for 1 .. $nclients;

my $t0 = time();
my %how_count;
my ($cycles, $running, @unexpected) = (0, 0);
my @first_ways = shuffle(qw(immediate kill9 kill9aux fast));
while ($cycles < $max_cycles && ($cycles == 0 || time() - $t0 < $max_secs))
{
	my $cycle = ++$cycles;
	my $before = $ids->count;
	my @h;
	for my $c (1 .. $nclients)
	{
		my $base = "$dir/c${cycle}_$c";
		push @h,
		  start_psql_script($node, "$dir/client$c.sql", "$base.out", "$base.err",
			appname => "crashloop_c${cycle}_$c", timeout => 300);
	}
	die "cycle $cycle: clients did not connect" unless wait_for_clients($cycle);
	usleep(int(1_000_000 * (0.1 + rand(1.9))));
	# the crash must hit clients at work, not idle ones
	my @pids = client_pids($cycle);
	$running += @pids;

	# every way once (in random order), then mostly crashes
	my $r = rand();
	my $how =
	    @first_ways ? shift @first_ways
	  : $r < 0.4    ? 'immediate'
	  : $r < 0.75   ? 'kill9'
	  : $r < 0.85   ? 'kill9aux'
	  :               'fast';
	$how = 'immediate' if $how eq 'kill9' && !@pids;
	$how_count{$how}++;
	my $what = crash($how, \@pids);

	# every client exits once its connection is gone
	for my $h (@h)
	{
		eval { $h->finish; 1 } or do { diag "client: $@"; $h->kill_kill; };
	}
	my %per_client;
	for my $c (1 .. $nclients)
	{
		my $base = "$dir/c${cycle}_$c";
		for my $rec (parse_tagged_ids(slurp_file("$base.out")))
		{
			my ($alloc, $s, $e, $n) = @$rec;
			push @unexpected, "cycle $cycle client $c: batch of $alloc [$s,$e) is not $n IDs"
			  if defined $n && $e - $s != $n;
			$ids->add_range($alloc, "cycle $cycle client $c", $s, $e);
			$per_client{$c} += $e - $s;
		}
		for (lines(slurp_file("$base.err")))
		{
			next unless /\b(ERROR|FATAL|PANIC):\s+([0-9A-Z]{5})\b/;
			push @unexpected, "cycle $cycle client $c: $_"
			  unless $1 ne 'PANIC' && $expected_state{$2};
		}
	}
	my $got = $ids->count - $before;
	ok($got > 0, "cycle $cycle ($what): the clients received IDs ($got)")
	  or diag "per client: " . join(', ', map { "$_: " . ($per_client{$_} // 0) } 1 .. $nclients);

	# the first ID of each allocator after the restart is above every ID
	# received so far
	my @low;
	for my $alloc (@allocators)
	{
		my $max   = $ids->max($alloc);
		my $first = $node->safe_psql('postgres', 'SELECT ' . one_call($alloc));
		push @low, "$alloc: $first <= $max" if defined $max && $first <= $max;
		$ids->add_ids($alloc, "cycle $cycle first-after", $first);
	}
	is(join('; ', @low), '',
		"cycle $cycle: the first ID of every allocator after the restart is above all IDs received");
	note sprintf('cycle %d: %s with %d clients at work, after %d IDs (%s); %.0f s so far',
		$cycle, $what, scalar(@pids), $got,
		join(', ', map { "c$_ " . ($per_client{$_} // 0) } 1 .. $nclients),
		time() - $t0);
}

my $dups = $ids->repeated;
is($dups, 0, "no ID received twice in $cycles crash cycles")
  or diag join("\n", $ids->repeats);
is(join("\n", @unexpected), '', 'the clients saw no error a server going down does not explain');
is($running, $cycles * $nclients,
	'every crash hit all clients at work (none had run out of statements)');
cmp_ok($ids->distinct('tiny'), '>', 100, 'many IDs of tiny (many block advances)');

my $secs = time() - $t0;
diag sprintf(
	'SUMMARY crash_loop: cycles=%d ids=%d duplicates=%d seconds=%.0f (%s; distinct %s)',
	$cycles, $ids->count, $dups, $secs,
	join(', ', map { "$_=$how_count{$_}" } sort keys %how_count),
	join(', ', map { "$_ " . $ids->distinct($_) } @allocators));

$node->stop;
done_testing();
