# Copyright (c) idalloc authors
#
# G7: the persister, a background worker per database started on demand,
# persists an allocator's next block ahead of need, so that at a steady
# rate callers do not wait for a flush; allocation never depends on it:
#   (a) steady state: most blocks are persisted ahead (waits far below
#       block advances), the worker runs, IDs are unique and increasing;
#   (b) pg_terminate_backend of the worker: allocation goes on, a new one
#       comes back on demand;
#   (c) kill -9 of the worker (a crash-restart of the server): no ID
#       repeats, and a worker comes back;
#   (d) DROP DATABASE of a database whose worker runs succeeds;
#   (e) no worker can start (max_worker_processes = 0): allocation works,
#       every block is persisted by its callers;
#   (f) a caller waits for the persister, which is stuck mid-advance
#       (its UPDATE waits for a session holding a SHARE lock on the
#       table): pg_cancel_backend ends the caller's wait with 57014, and
#       the call took nothing;
#   (g) the same, and the persister is terminated mid-advance: the caller
#       persists its block itself once the lock is gone, and gets its IDs;
#   (h) the same, and the persister is killed with kill -9 mid-advance:
#       after the crash-restart no ID repeats;
#   (i) a caller whose transaction holds an AccessShareLock on the table,
#       with a VACUUM FULL queued behind it, does not wait for the
#       persister (which would wait behind the VACUUM): it gets its IDs.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IdallocTest;

# a fixed step (idalloc.max_block below the block): blocks of exactly 1000
my $node = idalloc_node('persister',
	conf => "idalloc.max_block = 1\nrestart_after_crash = on\n");
my $ids = IdallocTest::IdSet->new;

sub q1 { my ($sql, $db) = @_; return $node->safe_psql($db // 'postgres', $sql); }

sub view
{
	my ($name, $db) = @_;
	my ($waits, $advances, $until) = split /\|/,
	  q1("SELECT waits, block_advances, persisted_until FROM idalloc_allocators
	       WHERE name = '$name'", $db);
	return { waits => $waits, advances => $advances, until => $until };
}

sub worker_pid
{
	my ($db) = @_;
	$db //= 'postgres';
	return q1("SELECT coalesce(max(pid), 0) FROM pg_stat_activity
	            WHERE backend_type = 'idalloc persister' AND datname = '$db'");
}

# $calls batches of $n of $name at a steady pace, in one session
sub steady
{
	my ($name, $calls, $n, $where, $db) = @_;
	my $sql = join('',
		map { "SELECT start_id || ':' || end_id FROM idalloc_batch('$name', $n); SELECT pg_sleep(0.005);\n" }
		  1 .. $calls);
	my @got = grep { /:/ } lines(q1($sql, $db));
	is(scalar(@got), $calls, "$where: $calls batches of $name");
	my $prev;
	my $ordered = 1;
	for my $r (@got)
	{
		my ($s, $e) = split /:/, $r;
		$ids->add_range($name, $where, $s, $e);
		$ordered = 0 if defined $prev && $s < $prev;
		$prev = $e;
	}
	ok($ordered, "$where: increasing within the session");
	return;
}

############################################################################
# (a) steady state
q1(q{SELECT idalloc_create('p', block => 1000)});
steady('p', 400, 100, '(a)');
my $v = view('p');
cmp_ok($v->{advances}, '>=', 39, "(a) 40000 IDs took $v->{advances} block advances");
cmp_ok($v->{waits}, '<', $v->{advances} / 2,
	"(a) most blocks were persisted ahead: $v->{waits} calls waited, for $v->{advances} blocks");
my $pid = worker_pid();
ok($pid > 0, "(a) the persister of database postgres runs (pid $pid)");

############################################################################
# (b) the worker is terminated: allocation goes on; it comes back
q1("SELECT pg_terminate_backend($pid)");
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid"),
	'(b) the persister is gone');
steady('p', 100, 100, '(b)');
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'idalloc persister'"),
	'(b) a new persister came back on demand');

############################################################################
# (c) kill -9 of the worker: the postmaster restarts the server
$pid = worker_pid();
ok($pid > 0, '(c) a persister runs');
my $until = view('p')->{until};
kill 'KILL', $pid;
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid"),
	'(c) the server came back after the crash-restart');
my ($first) = split /:/, q1(q{SELECT start_id || ':' || end_id FROM idalloc_batch('p', 1)});
cmp_ok($first, '>', $ids->max('p'), '(c) the first ID after the crash is above every ID before');
cmp_ok($first, '<=', $until + 1000, '(c) and within the persisted window (G5)');
$ids->add_ids('p', '(c) first', $first);
steady('p', 100, 100, '(c)');

############################################################################
# (d) DROP DATABASE of a database whose persister runs
q1('CREATE DATABASE w');
q1('CREATE EXTENSION idalloc', 'w');
q1(q{SELECT idalloc_create('q', block => 1000)}, 'w');
steady('q', 50, 100, '(d)', 'w');
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity
		  WHERE backend_type = 'idalloc persister' AND datname = 'w'"),
	'(d) database w has its persister');
my ($ret, $out, $err) = (0, '', '');
$ret = $node->psql('postgres', 'DROP DATABASE w', stderr => \$err);
is($ret, 0, '(d) DROP DATABASE w succeeds while its persister ran') or diag $err;

# (d2) ALTER DATABASE that does not need the database free leaves the
# persister alone
steady('p', 50, 100, '(d2)');
my $before = worker_pid();
ok($before > 0, '(d2) a persister runs');
q1('ALTER DATABASE postgres CONNECTION LIMIT 50', 'template1');
is(worker_pid(), $before, '(d2) ALTER DATABASE ... CONNECTION LIMIT did not stop it');
q1('ALTER DATABASE postgres CONNECTION LIMIT -1', 'template1');

############################################################################
# (f), (g), (h): a caller waiting for a persister stuck mid-advance

# A session holds a SHARE lock on idalloc's table: the persister's UPDATE
# waits for it.  A caller asks for more than is ahead and waits for the
# persister.  Returns (blocker, caller, persister pid).
sub stuck_persister
{
	my ($where) = @_;
	steady('p', 20, 100, "$where warm-up");
	my $blocker = $node->background_psql('postgres');
	$blocker->query_safe('BEGIN; LOCK TABLE idalloc_registry IN SHARE MODE');
	my $caller = $node->background_psql('postgres', on_error_stop => 0);
	my $caller_pid = $caller->query_safe('SELECT pg_backend_pid()');
	$caller->query_until(qr/sent/,
		"\\echo sent\nSELECT 'got:' || start_id || ':' || end_id FROM idalloc_batch('p', 100000);\n");
	ok($node->poll_query_until('postgres',
			"SELECT count(*) = 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid)
			  WHERE a.backend_type = 'idalloc persister' AND NOT l.granted"),
		"$where: the persister waits for the lock, mid-advance");
	ok($node->poll_query_until('postgres',
			"SELECT wait_event_type = 'Extension' FROM pg_stat_activity WHERE pid = $caller_pid"),
		"$where: the caller waits for the persister");
	return ($blocker, $caller, $caller_pid, worker_pid());
}

{
	my ($blocker, $caller, $caller_pid) = stuck_persister('(f)');
	my $next = $ids->max('p') + 1;
	q1("SELECT pg_cancel_backend($caller_pid)");
	my $out = $caller->query('SELECT 1');
	like($caller->{stderr}, qr/canceling statement due to user request/,
		'(f) pg_cancel_backend ends the wait with its usual error');
	$blocker->query_safe('COMMIT');
	is(q1("SELECT idalloc_one('p')"), $next,
		'(f) the cancelled call took nothing: the next ID is the one after the last');
	$ids->add_ids('p', '(f) next', $next);
	$blocker->quit;
	$caller->quit;
}

{
	my ($blocker, $caller, $caller_pid, $wpid) = stuck_persister('(g)');
	q1("SELECT pg_terminate_backend($wpid)");
	ok($node->poll_query_until('postgres',
			"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $wpid"),
		'(g) the persister is gone');
	$blocker->query_safe('COMMIT');
	my $out = $caller->query('SELECT 1');
	my ($s, $e) = $out =~ /got:(\d+):(\d+)/;
	ok(defined $e && $e - $s == 100000,
		'(g) the caller persisted its block itself and got its 100000 IDs');
	$ids->add_range('p', '(g) batch', $s, $e) if defined $e;
	$blocker->quit;
	$caller->quit;
}

{
	my ($blocker, $caller, $caller_pid, $wpid) = stuck_persister('(h)');
	my $max = $ids->max('p');
	kill 'KILL', $wpid;
	ok($node->poll_query_until('postgres',
			"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $wpid"),
		'(h) the server came back after the crash-restart');
	eval { $blocker->quit; };
	eval { $caller->quit; };
	my ($first) = split /:/, q1(q{SELECT start_id || ':' || end_id FROM idalloc_batch('p', 1)});
	cmp_ok($first, '>', $max, '(h) the first ID after the crash is above every ID before');
	$ids->add_ids('p', '(h) first', $first);
	steady('p', 20, 100, '(h)');
}

############################################################################
# (i) a caller whose transaction read the table (AccessShareLock) while a
# VACUUM FULL of the table queues behind it: waiting for the persister
# (whose RowExclusiveLock would queue behind the VACUUM) would be a
# deadlock no detector sees; it persists its block itself
{
	steady('p', 20, 100, '(i) warm-up');
	my $reader = $node->background_psql('postgres', on_error_stop => 0);
	$reader->query_safe('BEGIN; SELECT count(*) FROM idalloc_allocators');
	my $vacuum = $node->background_psql('postgres', on_error_stop => 0);
	$vacuum->query_until(qr/sent/, "\\echo sent\nVACUUM FULL idalloc_registry;\n");
	ok($node->poll_query_until('postgres',
			"SELECT count(*) = 1 FROM pg_locks WHERE NOT granted AND mode = 'AccessExclusiveLock'"),
		'(i) VACUUM FULL waits for the reader');
	my $out = $reader->query("SELECT 'got:' || start_id || ':' || end_id FROM idalloc_batch('p', 100000)");
	my ($s, $e) = $out =~ /got:(\d+):(\d+)/;
	ok(defined $e && $e - $s == 100000, '(i) the reader got its 100000 IDs')
	  or diag $reader->{stderr};
	$ids->add_range('p', '(i) batch', $s, $e) if defined $e;
	$reader->query_safe('COMMIT');
	$vacuum->query_safe('SELECT 1');
	$reader->quit;
	$vacuum->quit;
}

############################################################################
# (e) no worker can start
$node->append_conf('postgresql.conf', "max_worker_processes = 0\n");
$node->restart;
steady('p', 100, 100, '(e)');
is(worker_pid(), '0', '(e) no persister (max_worker_processes = 0)');
$v = view('p');
cmp_ok($v->{waits}, '>=', $v->{advances} - 1,
	'(e) every block was persisted by a caller that waited for it');
is(join("\n", $ids->repeats), '', 'no ID handed out twice');

$node->stop;
done_testing();
