# Copyright (c) idalloc authors
#
# Logical replication carries allocator state (issue 8, item 4; SPEC G1
# [1.1]): the persister writes each block as a transactional UPDATE of the
# row before it is published, so once a subscriber has applied a
# transaction that committed after an ID was handed out on the publisher,
# the subscriber's allocator continues above that ID, with no
# idalloc-specific step at switch-over.
#
#   (a) the publisher hands out IDs at a steady pace, in batches that leave
#       the database (never stored) and in committed rows; then a marker
#       transaction commits; once the subscriber has applied it (and
#       nothing else is done), the subscriber's allocator continues above
#       every ID the publisher handed out before the marker;
#   (b) the same after an immediate stop and restart of the subscriber;
#   (c) switch-over: the publisher stops, the application moves to the
#       subscriber; no ID repeats across the two servers;
#   (d) a block a caller persisted itself (in place, which logical
#       decoding does not see: here because its transaction holds a lock
#       on idalloc's table) travels with the persister's next write, which
#       the caller asked for;
#   (e) the subscriber's apply never lowers an allocator: an allocator the
#       subscriber advanced past the publisher stays there;
#   (f) a tso allocator (issue 9) whose publisher's clock runs a day ahead:
#       the subscriber, with the real clock, continues above every ID the
#       publisher handed out (its clock would not get it there: the
#       replicated window does).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IdallocTest;

my $pub = idalloc_node('pub', init => { allows_streaming => 'logical' });
my $sub = idalloc_node('sub', init => { allows_streaming => 'logical' });
my $ids = IdallocTest::IdSet->new;



for my $node ($pub, $sub)
{
	$node->safe_psql('postgres',
		"CREATE TABLE orders (id bigint PRIMARY KEY, note text)");
}
# a small block, so that the run sees many block advances (the step grows)
$pub->safe_psql('postgres', "SELECT idalloc_create('orders', block => 100);
	SELECT idalloc_create('side', block => 100);
	CREATE PUBLICATION p FOR ALL TABLES");
$sub->safe_psql('postgres',
	"CREATE SUBSCRIPTION s CONNECTION '" . $pub->connstr . " dbname=postgres'"
	  . " PUBLICATION p");
$sub->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_subscription_rel WHERE srsubstate <> 'r'")
  or die "the initial sync did not finish";

sub sq { my ($node, $sql) = @_; return $node->safe_psql('postgres', $sql); }

# $rounds of: a batch of 1000 that leaves the database, and one committed
# row; returns the largest ID handed out
sub steady
{
	my ($rounds, $alloc) = @_;
	$alloc //= 'orders';
	my $max = 0;
	my $sql = join('', map {
		"SELECT start_id, end_id FROM idalloc_batch('$alloc', 1000);\n"
		  . "INSERT INTO orders SELECT idalloc_one('$alloc'), 'row' RETURNING id, id + 1;\n"
		  . "SELECT pg_sleep(0.002);\n"
	} 1 .. $rounds);
	for my $line (lines(sq($pub, $sql)))
	{
		next unless $line =~ /^(\d+)\|(\d+)$/;
		$ids->add_range($alloc, 'publisher', $1, $2);
		$max = $2 - 1 if $2 - 1 > $max;
	}
	return $max;
}

sub marker
{
	sq($pub, "INSERT INTO orders VALUES (-1 * (SELECT count(*) FROM orders) - 1, 'marker')");
	$pub->wait_for_catchup('s');
}

# --- (a) ---------------------------------------------------------------------
my $max = steady(200);
cmp_ok($max, '>', 200_000, "(a) the publisher handed out IDs ($max)");
my ($advances, $waits) = split /\|/, sq($pub,
	"SELECT block_advances, waits FROM idalloc_allocators WHERE name = 'orders'");
cmp_ok($advances, '>=', 5, "(a) over several block advances ($advances, $waits waits)");
marker();
my $first = sq($sub, "SELECT idalloc_one('orders')");
cmp_ok($first, '>', $max,
	"(a) after applying a later commit, the subscriber continues above every ID handed out ($first > $max)");
$ids->add_ids('orders', 'subscriber', $first);
cmp_ok(sq($sub, "SELECT persisted_end FROM idalloc_registry WHERE name = 'orders'"),
	'>', $max, "(a) the subscriber's row is past them");

# --- (b) immediate restart of the subscriber ---------------------------------
$max = steady(50);
marker();
$sub->stop('immediate');
$sub->start;
$first = sq($sub, "SELECT idalloc_one('orders')");
cmp_ok($first, '>', $max,
	"(b) after an immediate restart, the subscriber continues above ($first > $max)");
$ids->add_ids('orders', 'subscriber', $first);

# --- (d) a block a caller persisted in place ----------------------------------
{
	# a transaction holding a lock on the table persists its own blocks
	my $out = sq($pub, "BEGIN;
		LOCK TABLE idalloc_registry IN ROW EXCLUSIVE MODE;
		SELECT start_id, end_id FROM idalloc_batch('side', 1000000);
		COMMIT;");
	my ($s, $e) = $out =~ /(\d+)\|(\d+)/;
	$ids->add_range('side', 'publisher, in place', $s, $e);
	# the persister writes the row again: a later commit carries it
	$pub->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'idalloc persister'");
	my $deadline = time + 30;
	my $ok = 0;
	while (time < $deadline)
	{
		marker();
		if (sq($sub, "SELECT persisted_end FROM idalloc_registry WHERE name = 'side'") >= $e)
		{
			$ok = 1;
			last;
		}
		sleep 1;
	}
	ok($ok, "(d) a block persisted in place by a caller reaches the subscriber with the persister's next write");
}

# --- (e) the subscriber's own advance is not lowered -----------------------
sq($sub, "SELECT idalloc_advance('side', 9000000000000)");
steady(20, 'side');
marker();
cmp_ok(sq($sub, "SELECT idalloc_one('side')"), '>=', 9000000000000,
	"(e) the apply did not lower the subscriber's allocator");

# --- (f) tso ------------------------------------------------------------------
{
	sq($pub, "SELECT idalloc_create('events', kind => 'tso')");
	my $sql = "SET client_min_messages = error;
		SET idalloc.debug_tso_clock_offset = '1d';\n"
	  . join('', map {
		"SELECT start_id, end_id FROM idalloc_batch('events', 300000);\n"
		  . "INSERT INTO orders SELECT idalloc_one('events'), 'event' RETURNING id, id + 1;\n"
		  . "SELECT pg_sleep(0.01);\n"
	  } 1 .. 20);
	my $tmax = 0;
	for my $line (lines(sq($pub, $sql)))
	{
		next unless $line =~ /^(\d+)\|(\d+)$/;
		$ids->add_range('events', 'publisher', $1, $2);
		$tmax = $2 - 1 if $2 - 1 > $tmax;
	}
	cmp_ok(sq($pub, "SELECT physical > now() + interval '23 hours' FROM idalloc_tso_decode($tmax)"),
		'eq', 't', "(f) the publisher's tso IDs run a day ahead");
	marker();
	my $tfirst = sq($sub, "SELECT idalloc_one('events')");
	cmp_ok($tfirst, '>', $tmax,
		"(f) the subscriber's tso allocator continues above every ID of the publisher ($tfirst > $tmax)");
	is(sq($sub, "SELECT kind FROM idalloc_allocators WHERE name = 'events'"),
		'tso', "(f) it is a tso allocator on the subscriber too");
	$ids->add_ids('events', 'subscriber', $tfirst);
}

# --- (c) switch-over ---------------------------------------------------------
$max = steady(30);
marker();
$pub->stop;
sq($sub, "ALTER SUBSCRIPTION s DISABLE");
my $after = sq($sub, "SELECT string_agg(start_id || ':' || end_id, ',') FROM idalloc_batch('orders', 5000)");
my ($s, $e) = $after =~ /(\d+):(\d+)/;
cmp_ok($s, '>', $max, "(c) after switch-over the subscriber hands out above the publisher");
$ids->add_range('orders', 'subscriber after switch-over', $s, $e);
is($ids->repeated, 0, "(c) no ID repeats across the two servers ("
	  . $ids->count . " IDs)") or diag join("\n", $ids->repeats);

$sub->stop;
done_testing();
