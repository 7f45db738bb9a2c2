# Copyright (c) idalloc authors
#
# A publication FOR ALL TABLES of a server with a sourced allocator (issue
# 17, defect 1).  The conninfo of a sourced allocator, password included,
# is in idalloc_source_conninfo, keyed by the registry id, and a
# publication FOR ALL TABLES carries that table.  Rows that a subscription
# brings into it (copied by the table sync, or an INSERT, UPDATE or DELETE
# applied) must be skipped, and direct writes are refused.
#
# All on this machine: an authority A with two databases a1 and a2, each
# with allocators x and y (a1 also z); a publisher P whose 'x' takes its
# blocks from a1 (role fetch_p, password Pw-publisher-4711); two
# subscribers whose 'y' takes its blocks from a1 (role fetch_s, password
# Pw-subscriber-0815):
#
#   S   creates its 'y' before it subscribes: registry id 2 on both P and
#       S, so the conninfo rows collide in the initial sync;
#   S2  subscribes first, with nothing in its conninfo table, and creates
#       its 'y' (registry id 2 again) after the sync (on the old build its
#       sync copied P's row 2, and its idalloc_create upserted over it).
#
#   (a) the initial sync of every table of both subscriptions, the
#       conninfo table included (pg_publication_tables lists it), reaches
#       state 'r' (on the old build S's copy of row 2 failed with a
#       duplicate key and was retried forever: the wait is bounded so that
#       the file fails instead of hanging), with no duplicate-key error on
#       the conninfo table in S's log;
#   (b) the publisher's password reaches neither subscriber's conninfo
#       table nor S's server log; S's row 2 keeps its own conninfo, S2's
#       table stays empty;
#   (c) streamed changes of the conninfo table are skipped: P's
#       idalloc_alter(x, source => a2) (an UPDATE of row 2) and a sourced
#       allocator created and dropped on P (an INSERT and a DELETE of row
#       3) leave both subscribers' tables exactly as they were (row 2: a1,
#       fetch_s, its own password), and the subscriptions keep applying
#       (an allocator created afterwards arrives); P's sourced allocators
#       are not created on the subscribers (skipped with a WARNING);
#   (d) after a clean restart of S and of S2, their 'y' still take blocks
#       from a1 (a2's y does not move) and no ID of y is handed out twice
#       across S and S2 (one ID space, a1's); after a restart of P, its
#       'x' (from a2 now, which was ahead) hands out no ID twice;
#   (e) direct INSERT, UPDATE, DELETE and TRUNCATE of the conninfo table on
#       S, as a superuser, fail with 42501 and change nothing.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use IdallocTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $pw_p = 'Pw-publisher-4711';
my $pw_s = 'Pw-subscriber-0815';
my $dupkey = 'duplicate key value violates unique constraint "idalloc_source_conninfo_pkey"';
my $conninfo_sql = 'SELECT id, conninfo FROM idalloc_source_conninfo ORDER BY id';

# --- the authority: databases a1 and a2 ------------------------------------
my $A = idalloc_node('authority', no_extension => 1);
$A->safe_psql('postgres', qq{
	SET log_statement = 'none';  -- (the test's own statements)
	CREATE ROLE fetch_p LOGIN PASSWORD '$pw_p';
	CREATE ROLE fetch_s LOGIN PASSWORD '$pw_s';
	RESET log_statement;
	CREATE DATABASE a1;
	CREATE DATABASE a2;
});
for my $db ('a1', 'a2')
{
	$A->safe_psql($db, q{
		CREATE EXTENSION idalloc;
		SELECT idalloc_create('x');
		SELECT idalloc_create('y');
	});
}
$A->safe_psql('a1', "SELECT idalloc_create('z')");

sub conninfo
{
	my ($db, $user, $pw) = @_;
	return 'host=' . $A->host . ' port=' . $A->port
	  . " dbname=$db user=$user password=$pw";
}
my $ci_p1 = conninfo('a1', 'fetch_p', $pw_p);
my $ci_p2 = conninfo('a2', 'fetch_p', $pw_p);
my $ci_s1 = conninfo('a1', 'fetch_s', $pw_s);

# next_id of $alloc in database $db of the authority
sub authority_next
{
	my ($db, $alloc) = @_;
	return $A->safe_psql($db,
		"SELECT next_id FROM idalloc_allocators WHERE name = '$alloc'");
}

sub create_sourced
{
	my ($node, $alloc, $ci) = @_;
	$node->safe_psql('postgres',
		"SELECT idalloc_create('$alloc', source => " . sql_literal($ci) . ')');
	return $node->safe_psql('postgres',
		"SELECT id FROM idalloc_registry WHERE name = '$alloc'");
}

# the IDs of y of both subscribers are one ID space (a1's y)
my $x_ids = IdallocTest::IdSet->new;
my $y_ids = IdallocTest::IdSet->new;

# --- the publisher and the subscribers ----------------------------------------
my $P  = idalloc_node('publisher', init => { allows_streaming => 'logical' });
my $S  = idalloc_node('subscriber');
my $S2 = idalloc_node('subscriber2');

is(create_sourced($P, 'x', $ci_p1), '2',
	"precondition: the publisher's sourced x has registry id 2");
is(create_sourced($S, 'y', $ci_s1), '2',
	"precondition: S's sourced y has registry id 2 (its conninfo row collides with P's)");
take_ids($y_ids, $S, 'y', 10, 'S before the subscription');
take_ids($x_ids, $P, 'x', 10, 'P before the subscription');

my $s_table = $S->safe_psql('postgres', $conninfo_sql);
is($s_table, "2|$ci_s1", "precondition: S's conninfo table has its own row 2 only");
my $a2_y = authority_next('a2', 'y');

# --- (a) the subscriptions and their initial sync ------------------------------
$P->safe_psql('postgres', 'CREATE PUBLICATION pub FOR ALL TABLES');
is($P->safe_psql('postgres',
		q{SELECT count(*) FROM pg_publication_tables
		   WHERE pubname = 'pub' AND tablename = 'idalloc_source_conninfo'}),
	'1', '(a) the publication FOR ALL TABLES carries idalloc_source_conninfo');

my $pub_connstr = $P->connstr . ' dbname=postgres';
my %subname = (subscriber => 'sub', subscriber2 => 'sub2');
for my $node ($S, $S2)
{
	$node->safe_psql('postgres',
		"CREATE SUBSCRIPTION $subname{$node->name} CONNECTION '$pub_connstr' PUBLICATION pub");
}
my %synced;
for my $node ($S, $S2)
{
	my ($name, $sub) = ($node->name, $subname{ $node->name });
	$synced{$name} = poll_bounded($node,
		qq{SELECT count(*) > 0 AND count(*) FILTER (WHERE srsubstate <> 'r') = 0
		     FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid
		    WHERE s.subname = '$sub'},
		45);
	ok($synced{$name}, "(a) $name: every table of the subscription reaches state 'r' (within 45 s)")
	  or diag $node->safe_psql('postgres',
		'SELECT srrelid::regclass, srsubstate FROM pg_subscription_rel');
	is($node->safe_psql('postgres',
			q{SELECT srsubstate FROM pg_subscription_rel
			   WHERE srrelid = 'idalloc_source_conninfo'::regclass}),
		'r', "(a) $name: idalloc_source_conninfo is one of them, in state 'r'");
}
unlike(slurp_file($S->logfile), qr/\Q$dupkey\E/,
	"(a) no duplicate-key error on the conninfo table in S's log after the sync");

# --- (b) nothing of the publisher's conninfo arrived ---------------------------
# (compared here, not in SQL: the statements are logged, log_statement = all)
unlike($S->safe_psql('postgres', $conninfo_sql), qr/\Q$pw_p\E/,
	"(b) no row of S's conninfo table has the publisher's password");
is($S->safe_psql('postgres', $conninfo_sql), $s_table,
	"(b) S's conninfo table is as it was after the sync");
like($S->safe_psql('postgres', 'SELECT conninfo FROM idalloc_source_conninfo WHERE id = 2'),
	qr/dbname=a1 .*password=\Q$pw_s\E/,
	"(b) S's row 2 still names a1 with the subscriber's own password");
is($S2->safe_psql('postgres', $conninfo_sql), '',
	"(b) S2's conninfo table is still empty after the sync (the publisher's row 2 was not copied)");
unlike(slurp_file($S->logfile), qr/\Q$pw_p\E/,
	"(b) the publisher's password is not in S's log");

# S2's own sourced allocator, after the sync
is(create_sourced($S2, 'y', $ci_s1), '2',
	"precondition: S2's sourced y, created after the sync, has registry id 2");
take_ids($y_ids, $S2, 'y', 10, 'S2 after the sync');
my $s2_table = $S2->safe_psql('postgres', $conninfo_sql);
is($s2_table, "2|$ci_s1", "precondition: S2's conninfo table has its own row 2 only");

# --- (c) streamed changes of the conninfo table ---------------------------------
# a2 is the new authority of the publisher's x: a proper move, it is ahead
$A->safe_psql('a2', "SELECT idalloc_advance('x', 1000000000)");
$P->safe_psql('postgres', "SELECT idalloc_alter('x', source => " . sql_literal($ci_p2) . ')');
is(create_sourced($P, 'z', $ci_p1), '3',
	"precondition: the publisher's z has registry id 3");
like($P->safe_psql('postgres', $conninfo_sql),
	qr/^2\|[^\n]*dbname=a2[^\n]*\n3\|[^\n]*dbname=a1/,
	"precondition: the publisher's conninfo table has row 2 (now a2) and row 3");
$P->safe_psql('postgres', "SELECT idalloc_drop('z')");
$P->safe_psql('postgres', "SELECT idalloc_create('w')");    # a marker
my $lsn = $P->lsn('write');

for my $c ([ $S, $s_table ], [ $S2, $s2_table ])
{
	my ($node, $table) = @$c;
	my ($name, $sub) = ($node->name, $subname{ $node->name });
	my $ok = $synced{$name};
	# as $P->wait_for_catchup($sub), bounded (short if the sync never finished)
	ok(poll_bounded($P,
			qq{SELECT replay_lsn >= '$lsn' AND state = 'streaming'
			     FROM pg_stat_replication WHERE application_name = '$sub'},
			$ok ? 60 : 10),
		"(c) $name catches up with the publisher");
	ok(poll_bounded($node,
			q{SELECT count(*) = 1 FROM idalloc_registry WHERE name = 'w'}, $ok ? 30 : 5),
		"(c) $name keeps applying: an allocator created on the publisher afterwards arrives");
	is($node->safe_psql('postgres',
			q{SELECT count(*) FROM idalloc_registry WHERE name IN ('x', 'z')}),
		'0', "(c) $name: the publisher's sourced allocators were not applied");
	is($node->safe_psql('postgres', $conninfo_sql), $table,
		"(c) $name: after the publisher's UPDATE, INSERT and DELETE of its conninfo rows the table has exactly its own rows");
	like($node->safe_psql('postgres', 'SELECT conninfo FROM idalloc_source_conninfo WHERE id = 2'),
		qr/dbname=a1 .*user=fetch_s password=\Q$pw_s\E/,
		"(c) $name: row 2 still names a1, fetch_s and its own password");
	unlike($node->safe_psql('postgres', $conninfo_sql), qr/\Q$pw_p\E|dbname=a2/,
		"(c) $name: no row names a2 or has the publisher's password");
	is($node->safe_psql('postgres',
			qq{SELECT count(*) FROM pg_stat_subscription WHERE subname = '$sub' AND pid IS NOT NULL}),
		'1', "(c) $name: the apply worker is running");
}

# --- (d) restarts ---------------------------------------------------------------
for my $node ($S, $S2)
{
	my $name = $node->name;
	$node->restart;
	my ($ret, $out, $err) = $node->psql('postgres',
		"SELECT start_id, end_id FROM idalloc_batch('y', 200010)");
	my ($s, $e) = split /\|/, ($out // '');
	my $got = $ret == 0 && defined $e && $e - $s == 200010;
	ok($got, "(d) $name after its restart: a batch of 200010 IDs of y") or diag $err;
	$y_ids->add_range('y', "$name batch after the restart", $s, $e) if $got;
	take_ids($y_ids, $node, 'y', 20, "$name after the restart");
}
no_repeats($y_ids, '(d) no ID of y handed out twice across S and S2 and their restarts ('
	  . $y_ids->count('y') . ' IDs)');
is(authority_next('a2', 'y'), $a2_y,
	"(d) a2's y did not move: neither subscriber takes its blocks from a2");
cmp_ok(authority_next('a1', 'y'), '>', $y_ids->max('y'),
	"(d) a1's y is above every ID of y the subscribers handed out: they take their blocks from a1");

take_ids($x_ids, $P, 'x', 10, 'P after the move to a2');
$P->restart;
take_ids($x_ids, $P, 'x', 10, 'P after its restart');
no_repeats($x_ids, '(d) P: no ID of x handed out twice (' . $x_ids->count('x') . ' IDs)');

# --- (e) direct writes on S ------------------------------------------------------
fails_with($S, "INSERT INTO idalloc_source_conninfo VALUES (99, 'x')", '42501',
	'(e) a direct INSERT into the conninfo table');
fails_with($S, "UPDATE idalloc_source_conninfo SET conninfo = 'host=elsewhere' WHERE id = 2",
	'42501', '(e) a direct UPDATE');
fails_with($S, 'DELETE FROM idalloc_source_conninfo WHERE id = 2', '42501',
	'(e) a direct DELETE');
fails_with($S, 'TRUNCATE idalloc_source_conninfo', '42501', '(e) a TRUNCATE');
is($S->safe_psql('postgres', $conninfo_sql), $s_table, '(e) the table is unchanged');

# --- the logs --------------------------------------------------------------------
for my $node ($S, $S2)
{
	my $name = $node->name;
	my $log = slurp_file($node->logfile);
	unlike($log, qr/\Q$dupkey\E/,
		"$name: no duplicate-key error on the conninfo table in its log");
	unlike($log, qr/\Q$pw_p\E/, "$name: the publisher's password is not in its log");
	is(join("\n", server_crashes($log)), '', "$name: no crash in its log");
}

for my $node ($S, $S2)
{
	$node->safe_psql('postgres', "DROP SUBSCRIPTION $subname{$node->name}");
}
$_->stop for ($S, $S2, $P, $A);
done_testing();
