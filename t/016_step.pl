# Copyright (c) idalloc authors
#
# G7's adaptive step and G5's bounded gap: an allocator's step doubles
# while its blocks are used up in under a second (up to idalloc.max_block),
# is halved back towards its block when a block lasted longer than 4 s,
# stays at the block when idalloc.max_block is at or below it; a batch
# larger than the step persists itself plus a step, once; the views show
# step and waits; after an immediate stop, allocation resumes at most at
# the persisted end seen before (a gap of at most the persisted window) and
# above every ID handed out.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IdallocTest;

# without the persister (t/017): every block here is persisted by the
# caller that runs out, so advances and waits count exactly
my $node = idalloc_node('step', conf => "idalloc.persister = off\n");
my $ids = IdallocTest::IdSet->new;

sub q1 { return $node->safe_psql('postgres', $_[0]); }

# idalloc.max_block is a server-wide setting (PGC_SIGHUP)
sub set_max_block
{
	my ($value) = @_;
	q1(defined $value
		? "ALTER SYSTEM SET idalloc.max_block = $value"
		: 'ALTER SYSTEM RESET idalloc.max_block');
	q1('SELECT pg_reload_conf()');
	# wait until this is what a new session sees
	my $want = $value // 1073741824;
	$node->poll_query_until('postgres', "SELECT current_setting('idalloc.max_block') = '$want'")
	  or die "idalloc.max_block did not become $want";
	return;
}

sub view
{
	my ($name) = @_;
	my ($step, $waits, $advances, $next, $until) = split /\|/,
	  q1("SELECT step, waits, block_advances, next_id, persisted_until
	        FROM idalloc_allocators WHERE name = '$name'");
	return { step => $step, waits => $waits, advances => $advances,
		next => $next, until => $until };
}

# $n IDs of $name in one statement, recorded; $set is SQL run first
sub burst
{
	my ($name, $n, $set) = @_;
	$set //= '';
	my $out = q1("$set SELECT min(i), max(i), count(*) FROM
	                (SELECT idalloc_one('$name') AS i FROM generate_series(1, $n)) s");
	my ($min, $max, $count) = split /\|/, $out;
	is($count, $n, "$name: $n IDs");
	is($max - $min + 1, $n, "$name: contiguous within one session (cache 1, no other user)");
	$ids->add_range($name, "burst of $n", $min, $max + 1);
	return ($min, $max);
}

q1(q{SELECT idalloc_create('g', block => 10)});
is(view('g')->{step}, '10', 'a new allocator shows its block as its step');

# blocks of 10 used up in microseconds: the step doubles at each advance
burst('g', 20000);
my $v = view('g');
cmp_ok($v->{step}, '>', 10, "the step grew under load (now $v->{step})");
cmp_ok($v->{step}, '<=', 1073741824, 'and is at most idalloc.max_block');
# fixed blocks of 10 would have needed 2,000 advances
cmp_ok($v->{advances}, '<', 40,
	"20000 IDs took $v->{advances} block advances, not 2000");
cmp_ok($v->{waits}, '>=', $v->{advances} - 1,
	'every advance made a call wait for its block (waits counted)');
cmp_ok($v->{until} - $v->{next}, '<=', 2 * $v->{step},
	'the persisted window ahead is at most a step (G5 bound)');

# idalloc.max_block caps the growth
q1(q{SELECT idalloc_create('capped', block => 10)});
set_max_block(80);
burst('capped', 20000);
is(view('capped')->{step}, '80', 'idalloc.max_block = 80 caps the step at 80');

# at or below the block, the step stays at the block
q1(q{SELECT idalloc_create('fixed', block => 100)});
set_max_block(50);
burst('fixed', 5000);
$v = view('fixed');
is($v->{step}, '100', 'idalloc.max_block below the block: the step stays at the block');
is($v->{advances}, '50', 'so 5000 IDs took 50 advances of 100');

# a batch larger than the step: itself plus a step, once
q1(q{SELECT idalloc_create('big', block => 10)});
set_max_block(1);
my ($s, $e) = split /\|/,
  q1(q{SELECT start_id, end_id FROM idalloc_batch('big', 1000)});
set_max_block(undef);
$ids->add_range('big', 'batch', $s, $e);
$v = view('big');
is($v->{advances}, '1', 'a batch of 1000 with a step of 10: one advance');
is($v->{until}, $e + 10, 'persisted to the batch plus a step');

# demand falls: a block that lasted more than 4 s halves the step
$v = view('g');
my $grown = $v->{step};
my $left = $v->{until} - $v->{next};
burst('g', $left) if $left > 0;    # use the window up, quickly
sleep(5);
burst('g', 1);                     # needs a block: the last lasted > 4 s
$v = view('g');
is($v->{step}, int($grown / 2) < 10 ? 10 : int($grown / 2),
	"after a block that lasted 5 s (more than 4 s, less than 8 s) the step is halved ($grown -> $v->{step})");

# alter resets the step to the new block
q1(q{SELECT idalloc_alter('g', block => 30)});
is(view('g')->{step}, '30', 'idalloc_alter(block) sets the step to the new block');

# an immediate stop: resume above every ID, at most at the persisted end
burst('g', 20000);
my %until = map { $_ => view($_)->{until} } qw(g capped fixed big);
$node->stop('immediate');
$node->start;
for my $name (qw(g capped fixed big))
{
	my ($first) = burst($name, 5);
	cmp_ok($first, '>', $ids->max($name) - 5,
		"$name: after an immediate stop the first ID is above every ID before");
	cmp_ok($first, '<=', $until{$name},
		"$name: and at most the persisted end seen before the stop (G5)");
}
is(join("\n", $ids->repeats), '', 'no ID handed out twice');

$node->stop;
done_testing();
