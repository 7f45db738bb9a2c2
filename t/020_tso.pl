# Copyright (c) idalloc authors
#
# Allocators of kind tso (issue 9): each ID is max(previous + 1,
# now_ms << 18), and never goes backward, whatever the clock does.  The
# clock is moved with idalloc.debug_tso_clock_offset (superuser).
#   (a) a clock far forward is followed, with one WARNING;
#   (b) concurrent sessions (pgbench, 4 clients): unique, each ID at or
#       after the moment its call began;
#   (c) never backward across an immediate stop, a clean restart and a
#       crash of a backend while the clock runs a day behind;
#   (d) never backward after the promotion of a synchronous standby whose
#       clock runs a day behind.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IdallocTest;

my $node = idalloc_node('tso', init => { allows_streaming => 1 },
	conf => "restart_after_crash = on\n",
	sql => "SELECT idalloc_create('t', kind => 'tso');
	        CREATE TABLE got (id bigint NOT NULL, before timestamptz NOT NULL)");
my $ids = IdallocTest::IdSet->new;

sub q1 { my ($n, $sql) = @_; return $n->safe_psql('postgres', $sql); }

sub take
{
	my ($n, $where, $count) = @_;
	$count //= 100;
	my @got = lines(q1($n,
		"SELECT idalloc_one('t') FROM generate_series(1, $count)"));
	$ids->add_ids('t', $where, @got);
	return @got;
}

# --- (a) a jump forward --------------------------------------------------
{
	my ($ret, $out, $err) = $node->psql('postgres',
		"SELECT idalloc_one('t');
		 SET idalloc.debug_tso_clock_offset = '2h';
		 SELECT physical > clock_timestamp() + interval '119 min'
		   FROM idalloc_tso_decode(idalloc_one('t'));
		 SELECT physical > clock_timestamp() + interval '119 min'
		   FROM idalloc_tso_decode(idalloc_one('t'));");
	my @l = lines($out);
	is($l[1], 't', '(a) after the clock jumped 2 h forward, IDs follow it');
	is($l[2], 't', '(a) and go on from there');
	my @w = $err =~ /WARNING:  clock jumped forward by about (\d+) ms; tso allocator "t" follows it/g;
	is(scalar(@w), 1, '(a) one WARNING') or diag $err;
	cmp_ok($w[0] // 0, '>', 7_000_000, "(a) it says by how much ($w[0] ms)");
	$ids->add_ids('t', '(a)', $l[0]);
}
# the jump moved the allocator 2 h ahead: everything after stays above it

# --- (b) concurrent sessions ------------------------------------------------
$node->pgbench(
	'-n -c 4 -j 2 -t 500',
	0,
	[qr{number of failed transactions: 0}],
	[qr{^$}],
	'(b) 4 pgbench clients taking tso IDs',
	{ 'tso_b' => "INSERT INTO got SELECT idalloc_one('t'), clock_timestamp();\n" });
is(q1($node, "SELECT count(*) - count(DISTINCT id) FROM got"), '0',
	'(b) 2000 IDs from 4 sessions: no repeats');
is(q1($node, "SELECT count(*) FROM got WHERE id < idalloc_tso_from(before)"), '0',
	'(b) none is behind the clock at its call (the clock stands 2 h ahead of before, so this holds by far)');
$ids->add_ids('t', '(b)', lines(q1($node, "SELECT id FROM got")));

# --- (c) the clock a day behind, across stops ---------------------------
$node->append_conf('postgresql.conf', "idalloc.debug_tso_clock_offset = '-1d'\n");
$node->reload;
my $max = $ids->max('t');
my ($first) = take($node, '(c) clock behind');
cmp_ok($first, '>', $max, '(c) with the clock a day behind, IDs do not go backward');

$max = $ids->max('t');
$node->stop('immediate');
$node->start;
($first) = take($node, '(c) after immediate stop');
cmp_ok($first, '>', $max, '(c) after an immediate stop: above every ID before');

$max = $ids->max('t');
$node->restart;
($first) = take($node, '(c) after clean restart');
cmp_ok($first, '>', $max, '(c) after a clean restart: above every ID before');
is($first, $max + 1, '(c) and gapless (the clean shutdown saved the exact next ID)');

$max = $ids->max('t');
my $victim = $node->background_psql('postgres', on_error_stop => 0);
my $vpid = $victim->query_safe('SELECT pg_backend_pid()');
$victim->query_safe("SELECT idalloc_one('t')");
kill 'KILL', $vpid;
eval { $victim->quit; };
$node->poll_query_until('postgres', "SELECT true") or die "no restart";
($first) = take($node, '(c) after a backend crash');
cmp_ok($first, '>', $max, '(c) after a crash-restart: above every ID before');

# --- (d) promotion of a synchronous standby -----------------------------
$node->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('tso_standby');
$standby->init_from_backup($node, 'bk', has_streaming => 1);
$standby->append_conf('postgresql.conf', "idalloc.debug_tso_clock_offset = '-2d'\n");
$standby->start;
$node->append_conf('postgresql.conf', "synchronous_standby_names = '*'\n");
$node->reload;
$node->poll_query_until('postgres', q{SELECT sync_state = 'sync' FROM pg_stat_replication})
  or die 'standby did not become synchronous';
take($node, '(d) primary', 1000);
q1($node, "SELECT * FROM idalloc_batch('t', 1000000)");
$max = q1($node, "SELECT max(end_id) - 1 FROM idalloc_batch('t', 1)");
$ids->add_ids('t', '(d) last on the primary', $max);
$node->stop('immediate');
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'standby was not promoted';
($first) = take($standby, '(d) promoted standby');
cmp_ok($first, '>', $max,
	'(d) the promoted standby (clock two days behind) continues above the primary');

is(join("\n", $ids->repeats), '', 'no ID handed out twice');
$standby->stop;
done_testing();
