# Copyright (c) idalloc authors
#
# Allocators with a source (issue 10; SPEC "Sources"): one ID space across
# servers.  An authority and two servers whose allocator 'orders' takes its
# blocks from the authority's (s2 through a multi-host conninfo with
# target_session_attrs=read-write), all on this machine.
#
#   (a) the authority and both servers allocate at once (pgbench: idalloc_one
#       and batches): every ID is unique across the three servers, and
#       everything each session received strictly increases;
#   (a') the same for an allocator with per-backend caches (cache => 50);
#   (b) a sourced server stopped in immediate mode and started again reuses
#       nothing;
#   (c) 1e6 IDs in one query on a sourced server take a handful of round
#       trips to the authority (the step grows);
#   (d) the authority stopped: a sourced server serves what it holds, then
#       fails with a class 08 SQLSTATE within idalloc.source_timeout, naming
#       the allocator and the authority's host (never the password), and
#       stays up; the authority back: allocation resumes by itself;
#   (e) idalloc_advance on a sourced server is forwarded to the authority;
#   (f) an authority without the allocator: 42704; a bad conninfo: 22023;
#       if_not_exists on an existing sourced allocator: a NOTICE, the
#       authority not asked; no chains or cycles of sources, and a sourced
#       allocator cannot become local (0A000);
#       the authority being a standby: its 25006;
#   (g) the password is never visible to a non-superuser: not through the
#       table, the view, pg_dump, error messages or the server log;
#   (i) an authority that does not answer (its idalloc_batch waits for a
#       lock): a waiting caller is cancelled by statement_timeout (57014)
#       and fails with class 08 after idalloc.source_timeout, consuming
#       nothing either way; served once the authority answers;
#   (j) while one authority does not answer, a batch of an allocator with
#       another authority is fetched and served (fetches do not queue);
#   (h) failover of the authority to its synchronous standby: s1 moves with
#       idalloc_alter(source => ...), s2 follows by itself (multi-host);
#       no ID repeats across everything handed out before and after.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use IdallocTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $password = 'Pw-of-the-fetcher-9137';
my $ids = IdallocTest::IdSet->new;

# --- the authority and its synchronous standby --------------------------------
my $auth = idalloc_node('authority', init => { allows_streaming => 1 });
$auth->safe_psql('postgres', qq{
	SELECT idalloc_create('orders', block => 1000);
	SET log_statement = 'none';  -- (the test's own statement, not idalloc's)
	CREATE ROLE fetcher LOGIN PASSWORD '$password';
	RESET log_statement;
	GRANT EXECUTE ON FUNCTION idalloc_advance(text, bigint) TO fetcher;
});
$auth->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('auth_standby');
$standby->init_from_backup($auth, 'b', has_streaming => 1);
$standby->start;
$auth->append_conf('postgresql.conf', "synchronous_standby_names = 'auth_standby'");
$auth->reload;
$auth->poll_query_until('postgres',
	"SELECT sync_state = 'sync' FROM pg_stat_replication WHERE application_name = 'auth_standby'")
  or die "the standby did not become synchronous";

sub conninfo
{
	my (@nodes) = @_;
	my $hosts = join(',', map { $_->host } @nodes);
	my $ports = join(',', map { $_->port } @nodes);
	my $tsa = @nodes > 1 ? ' target_session_attrs=read-write' : '';
	return "host=$hosts port=$ports dbname=postgres user=fetcher password=$password$tsa";
}

# --- two sourced servers ------------------------------------------------------
my @servers;
for my $name ('s1', 's2')
{
	my $node = idalloc_node($name, conf => "idalloc.source_timeout = '3s'\n");
	my $ci = $name eq 's1' ? conninfo($auth) : conninfo($auth, $standby);
	$node->safe_psql('postgres', qq{
		SELECT idalloc_create('orders', source => '$ci');
		CREATE TABLE got (seq bigserial PRIMARY KEY, client int NOT NULL,
						  id bigint NOT NULL, n bigint NOT NULL DEFAULT 1);
	});
	push @servers, $node;
}
my ($s1, $s2) = @servers;
$auth->safe_psql('postgres', q{
	CREATE TABLE got (seq bigserial PRIMARY KEY, client int NOT NULL,
					  id bigint NOT NULL, n bigint NOT NULL DEFAULT 1)});

like($s1->safe_psql('postgres', "SELECT source FROM idalloc_allocators WHERE name = 'orders'"),
	qr/^host=\S+ port=\d+ dbname=postgres$/,
	'the view shows host, port and database name of the authority');

# every ID a server's table holds, into the set
sub collect
{
	my ($node, $tag) = @_;
	for my $line (lines($node->safe_psql('postgres',
		'SELECT id, id + n FROM got ORDER BY seq')))
	{
		my ($s, $e) = split /\|/, $line;
		$ids->add_range('orders', $tag, $s, $e);
	}
	$node->safe_psql('postgres', 'TRUNCATE got');
	return;
}

# in each session (pgbench client), strictly increasing
sub increasing_per_client
{
	my ($node) = @_;
	return $node->safe_psql('postgres', q{
		SELECT count(*) FROM (
		  SELECT id, lag(id + n - 1) OVER (PARTITION BY client ORDER BY seq) AS prev
		    FROM got) s
		 WHERE id <= prev});
}

# --- (a) all three at once ------------------------------------------------------
my $script = q{
\set r random(1, 10)
\if :r <= 8
INSERT INTO got (client, id) VALUES (:client_id, idalloc_one('orders'));
\else
INSERT INTO got (client, id, n) SELECT :client_id, start_id, end_id - start_id FROM idalloc_batch('orders', 5000);
\endif
};
my $script_file = PostgreSQL::Test::Utils::tempdir . '/alloc.sql';
PostgreSQL::Test::Utils::append_to_file($script_file, $script);
my @runs;
for my $node ($auth, $s1, $s2)
{
	push @runs, IPC::Run::start(
		[ 'pgbench', '-n', '-c', '3', '-j', '3', '-T', '4', '-f', $script_file,
		  '-h', $node->host, '-p', $node->port, 'postgres' ],
		'>', \my $out, '2>', \my $err);
}
my $all_ok = 1;
$all_ok &&= $_->finish for @runs;
ok($all_ok, '(a) pgbench ran on the authority and both sourced servers at once');
for my $node ($auth, $s1, $s2)
{
	is(increasing_per_client($node), '0',
		'(a) ' . $node->name . ': every session received strictly increasing IDs');
}
my %rows = map { $_->name => $_->safe_psql('postgres', 'SELECT count(*) FROM got') } ($auth, $s1, $s2);
cmp_ok($rows{$_}, '>', 100, "(a) $_ handed out IDs ($rows{$_} calls)") for sort keys %rows;
collect($_, $_->name) for ($auth, $s1, $s2);
is($ids->repeated, 0, '(a) no ID repeats across the three servers (' . $ids->count . ' IDs)')
  or diag join("\n", $ids->repeats);

# --- (a') per-backend caches on sourced allocators -------------------------------
{
	$auth->safe_psql('postgres', "SELECT idalloc_create('ocached', block => 500)");
	for my $node ($s1, $s2)
	{
		my $ci = conninfo($auth);
		$node->safe_psql('postgres',
			"SELECT idalloc_create('ocached', source => '$ci', cache => 50)");
	}
	my $cscript = PostgreSQL::Test::Utils::tempdir . '/cached.sql';
	PostgreSQL::Test::Utils::append_to_file($cscript, q{
\set r random(1, 10)
\if :r <= 8
INSERT INTO got (client, id) VALUES (:client_id, idalloc_one('ocached'));
\else
INSERT INTO got (client, id, n) SELECT :client_id, start_id, end_id - start_id FROM idalloc_batch('ocached', 70);
\endif
});
	my @cruns;
	for my $node ($s1, $s2)
	{
		push @cruns, IPC::Run::start(
			[ 'pgbench', '-n', '-c', '3', '-j', '3', '-T', '3', '-f', $cscript,
			  '-h', $node->host, '-p', $node->port, 'postgres' ],
			'>', \my $out, '2>', \my $err);
	}
	my $ok = 1;
	$ok &&= $_->finish for @cruns;
	ok($ok, "(a') pgbench on two sourced servers with cache => 50");
	my $cids = IdallocTest::IdSet->new;
	for my $node ($s1, $s2)
	{
		is(increasing_per_client($node), '0',
			"(a') " . $node->name . ': each session received strictly increasing IDs (cached)');
		for my $line (lines($node->safe_psql('postgres', 'SELECT id, id + n FROM got')))
		{
			my ($s, $e) = split /\|/, $line;
			$cids->add_range('ocached', $node->name, $s, $e);
		}
		$node->safe_psql('postgres', 'TRUNCATE got');
	}
	is($cids->repeated, 0, "(a') no cached ID repeats across the two servers (" . $cids->count . ' IDs)')
	  or diag join("\n", $cids->repeats);
}

# --- (b) a sourced server crashes -------------------------------------------------
$s1->safe_psql('postgres',
	"INSERT INTO got (client, id) SELECT 0, idalloc_one('orders') FROM generate_series(1, 100)");
collect($s1, 's1 before its crash');
$s1->stop('immediate');
$s1->start;
$s1->safe_psql('postgres',
	"INSERT INTO got (client, id) SELECT 0, idalloc_one('orders') FROM generate_series(1, 100)");
$s1->safe_psql('postgres',
	"INSERT INTO got (client, id, n) SELECT 0, start_id, end_id - start_id FROM idalloc_batch('orders', 10000)");
collect($s1, 's1 after its crash');
is($ids->repeated, 0, '(b) after an immediate stop and start, the sourced server reuses nothing')
  or diag join("\n", $ids->repeats);

# --- (c) 1e6 IDs in one query --------------------------------------------------
{
	my $before = $s1->safe_psql('postgres',
		"SELECT block_advances FROM idalloc_allocators WHERE name = 'orders'");
	my $t0 = time;
	my $count = $s1->safe_psql('postgres',
		"SELECT count(DISTINCT idalloc_one('orders')) FROM generate_series(1, 1000000)");
	my $elapsed = time - $t0;
	my $after = $s1->safe_psql('postgres',
		"SELECT block_advances FROM idalloc_allocators WHERE name = 'orders'");
	is($count, '1000000', '(c) 1e6 distinct IDs in one query on a sourced server');
	cmp_ok($after - $before, '<=', 20,
		sprintf('(c) they took %d round trips to the authority (%.2f s)', $after - $before, $elapsed));
}

# --- (d) the authority goes away, and comes back ----------------------------------
{
	# what s2 holds: use it up, then the next call must fail
	$auth->stop('fast');
	my ($state, $stderr, $served, $elapsed) = ('', '', 0, 0);
	for my $i (1 .. 2000)
	{
		my $t0 = time;
		my ($st, $out, $err) = sqlstate_of($s2,
			"INSERT INTO got (client, id, n) SELECT 0, start_id, end_id - start_id FROM idalloc_batch('orders', 100000) RETURNING n");
		if ($st ne '')
		{
			($state, $stderr, $elapsed) = ($st, $err, time - $t0);
			last;
		}
		$served++;
	}
	like($state, qr/^08/, "(d) with the authority down, a class 08 error after what was held ($served calls served): $state");
	like($stderr, qr/allocator "orders"/, '(d) the message names the allocator');
	my $host = $auth->host;
	like($stderr, qr/\Q$host\E/, "(d) and the authority's host");
	unlike($stderr, qr/\Q$password\E/, '(d) but not the password');
	cmp_ok($elapsed, '<', 3 + 5, sprintf('(d) within idalloc.source_timeout (3 s; it took %.1f s)', $elapsed));
	is($s2->safe_psql('postgres', 'SELECT 1'), '1', '(d) the sourced server stays up');

	$auth->start;
	my $resumed = 0;
	for (1 .. 60)
	{
		my ($st) = sqlstate_of($s2,
			"INSERT INTO got (client, id) VALUES (0, idalloc_one('orders'))");
		if ($st eq '') { $resumed = 1; last; }
		sleep 1;
	}
	ok($resumed, '(d) once the authority is back, allocation resumes by itself');
	collect($s2, 's2 around the outage');
	$auth->poll_query_until('postgres',
		"SELECT sync_state = 'sync' FROM pg_stat_replication WHERE application_name = 'auth_standby'")
	  or die "the standby did not come back";
}

# --- (e) idalloc_advance is forwarded ------------------------------------------
{
	my $target = 5_000_000_000;
	my $ret = $s1->safe_psql('postgres', "SELECT idalloc_advance('orders', $target)");
	cmp_ok($ret, '>=', $target, '(e) idalloc_advance on a sourced server returns the authority\'s next ID');
	cmp_ok($auth->safe_psql('postgres', "SELECT idalloc_one('orders')"), '>=', $target,
		'(e) the authority moved');
	cmp_ok($s1->safe_psql('postgres', "SELECT idalloc_one('orders')"), '>=', $target,
		'(e) and so does the sourced server\'s next ID, though it held IDs below');
}

# --- (f) errors ---------------------------------------------------------------
{
	my $ci = conninfo($auth);
	fails_with($s1, "SELECT idalloc_create('nowhere', source => '$ci')", '42704',
		'(f) an authority without that allocator');
	fails_with($s1, "SELECT idalloc_create('bad', source => 'host=x nonsense=1')", '22023',
		'(f) a conninfo libpq cannot parse');
	my $sci = "host=" . $standby->host . " port=" . $standby->port . " dbname=postgres user=fetcher";
	$auth->safe_psql('postgres', "SELECT idalloc_create('via_standby')");
	$auth->wait_for_catchup('auth_standby', 'replay');
	$s1->safe_psql('postgres', "SELECT idalloc_create('via_standby', source => '$sci')");
	my $err = fails_with($s1, "SELECT idalloc_one('via_standby')", '25006',
		'(f) an authority that is a standby');
	like($err, qr/authority/, '(f) reported as the authority\'s');
	$s1->safe_psql('postgres', "SELECT idalloc_drop('via_standby')");
	fails_with($s1, "SELECT idalloc_alter('orders', source => 'host=x nonsense=1')", '22023',
		'(f) idalloc_alter with a bad conninfo');
	# no chains (they could close into a cycle), and no way back to local
	my $s1ci = 'host=' . $s1->host . ' port=' . $s1->port . ' dbname=postgres';
	fails_with($s1, "SELECT idalloc_alter('orders', source => '$s1ci')", '0A000',
		'(f) an allocator cannot take its blocks from itself (its own server as the authority)');
	$auth->safe_psql('postgres', "SELECT idalloc_create('chained')");
	$s1->safe_psql('postgres', "SELECT idalloc_create('chained', source => '$ci')");
	fails_with($s2, "SELECT idalloc_create('chained', source => '$s1ci')", '0A000',
		'(f) nor from an allocator that is sourced itself (a chain)');
	fails_with($s1, "SELECT idalloc_alter('orders', source => '')", '0A000',
		'(f) a sourced allocator cannot become local (an empty source)');
	# a migration run again: the allocator exists, the authority is not asked
	my ($ret, $out, $nerr) = $s1->psql('postgres',
		"SELECT idalloc_create('orders', source => 'host=/nonexistent port=1 dbname=x', if_not_exists => true)");
	is($ret, 0, '(f) if_not_exists with an existing sourced allocator succeeds without reaching the authority');
	like($nerr, qr/NOTICE:  allocator "orders" already exists, skipping/, '(f) with a NOTICE');
	fails_with($s1, "SELECT idalloc_create('orders_ine', source => 'host=/nonexistent port=1 dbname=x', if_not_exists => true)",
		'08001', '(f) if_not_exists still connects to create a new one (08001)');
}

# --- (g) the password is for superusers only --------------------------------------
{
	$s1->safe_psql('postgres', q{
		CREATE ROLE alice LOGIN;
		GRANT EXECUTE ON FUNCTION idalloc_create(text, bigint, bigint, integer, text, text, boolean) TO alice;
		GRANT EXECUTE ON FUNCTION idalloc_alter(text, bigint, integer, text) TO alice;
		CREATE DATABASE app OWNER alice;
	});
	$s1->safe_psql('app', 'CREATE EXTENSION idalloc');
	my $ci = conninfo($auth);
	$s1->safe_psql('app', "SELECT idalloc_create('orders', source => '$ci')");
	$s1->safe_psql('app', "GRANT EXECUTE ON FUNCTION idalloc_create(text, bigint, bigint, integer, text, text, boolean) TO alice");
	$s1->safe_psql('app', "GRANT EXECUTE ON FUNCTION idalloc_alter(text, bigint, integer, text) TO alice");
	my @as_alice = (extra_params => [ '-U', 'alice' ]);
	my ($out, $err) = ('', '');
	$s1->psql('app', 'SELECT * FROM idalloc_registry; SELECT * FROM idalloc_allocators',
		stdout => \$out, stderr => \$err, @as_alice);
	unlike($out . $err, qr/\Q$password\E/, '(g) not in the table nor the view, for a non-superuser');
	like($out, qr/host=/, '(g) (which show the host)');
	fails_with($s1, 'SET ROLE alice; SELECT * FROM idalloc_source_conninfo', '42501',
		'(g) the conninfo table is not readable by a non-superuser', dbname => 'app');
	fails_with($s1, "SET ROLE alice; SELECT idalloc_create('o2', source => 'host=x')", '42501',
		'(g) a non-superuser may not set a source, even with EXECUTE', dbname => 'app');
	fails_with($s1, "SET ROLE alice; SELECT idalloc_alter('orders', source => 'host=x')", '42501',
		'(g) nor change one', dbname => 'app');
	my ($dout, $derr) = ('', '');
	IPC::Run::run([ 'pg_dump', '-h', $s1->host, '-p', $s1->port, '-U', 'alice', 'app' ],
		'>', \$dout, '2>', \$derr);
	like($dout, qr/idalloc_registry/, '(g) pg_dump as a non-superuser runs')
	  or diag $derr;
	unlike($dout . $derr, qr/\Q$password\E/, '(g) and its output has no password');
	# a superuser's dump neither: the conninfo table is not dumped
	my $sdump = $s1->safe_psql('app', 'SELECT 1') && '';
	IPC::Run::run([ 'pg_dump', '-h', $s1->host, '-p', $s1->port, 'app' ], '>', \$sdump);
	unlike($sdump, qr/\Q$password\E/, '(g) nor that of a superuser (the conninfo is not dumped)');
	for my $node ($auth, $s1, $s2)
	{
		unlike(slurp_file($node->logfile), qr/\Q$password\E/,
			'(g) the password is not in the server log of ' . $node->name
			  . ' (log_statement = all)');
	}
}

# --- (i) an authority that does not answer: cancel, statement_timeout, source_timeout
{
	my $ci = conninfo($auth);
	$auth->safe_psql('postgres', "SELECT idalloc_create('slow', block => 1)");
	$s1->safe_psql('postgres', "SELECT idalloc_create('slow', source => '$ci')");
	$s1->safe_psql('postgres', "SELECT idalloc_one('slow')");
	my $held = sub {
		$s1->safe_psql('postgres',
			"SELECT next_id || '/' || persisted_until FROM idalloc_allocators WHERE name = 'slow'");
	};
	my $before = $held->();

	# the authority's idalloc_batch waits for this lock: every fetch hangs
	my $lock = $auth->background_psql('postgres');
	$lock->query_safe('BEGIN');
	$lock->query_safe('LOCK TABLE idalloc_registry IN ACCESS EXCLUSIVE MODE');

	# a batch larger than what s1 holds must wait for a fetch
	my ($st, $out, $err) = sqlstate_of($s1,
		"SET statement_timeout = '1s'; SELECT * FROM idalloc_batch('slow', 300000)");
	is($st, '57014', '(i) a caller waiting for the authority is cancelled by statement_timeout');
	is($held->(), $before, '(i) and consumed nothing of what the server holds');

	my $t0 = time;
	($st, $out, $err) = sqlstate_of($s1,
		"SET idalloc.source_timeout = '2s'; SELECT * FROM idalloc_batch('slow', 300000)");
	my $elapsed = time - $t0;
	like($st, qr/^08/, "(i) without statement_timeout it fails with class 08 ($st)");
	like($err, qr/allocator "slow"/, '(i) naming the allocator');
	cmp_ok($elapsed, '<', 2 + 5, sprintf('(i) after idalloc.source_timeout (2 s; %.1f s)', $elapsed));
	is($held->(), $before, '(i) again consuming nothing');

	$lock->query_safe('COMMIT');
	$lock->quit;
	my $ok = 0;
	for (1 .. 30)
	{
		($st) = sqlstate_of($s1, "SELECT * FROM idalloc_batch('slow', 300000)");
		if ($st eq '') { $ok = 1; last; }
		sleep 1;
	}
	ok($ok, '(i) once the authority answers again, the batch is served');
}

# --- (j) an authority that does not answer holds up only its own allocators ----
# s1 also takes 'side' from s2 (another authority).  While the persister's
# fetch for 'slow' hangs on the locked authority, batches of 'side' that
# each need a fetch are served at once, and the waiting caller of 'slow'
# is still waiting when they are: the fetches do not queue behind each
# other.
{
	$s2->safe_psql('postgres', "SELECT idalloc_create('side', block => 1)");
	my $ci2 = 'host=' . $s2->host . ' port=' . $s2->port . ' dbname=postgres';
	$s1->safe_psql('postgres', "SELECT idalloc_create('side', source => '$ci2')");
	$s1->safe_psql('postgres', "SELECT idalloc_one('side')");
	$s1->append_conf('postgresql.conf', "idalloc.source_timeout = '60s'");
	$s1->reload;

	my $lock = $auth->background_psql('postgres');
	$lock->query_safe('BEGIN');
	$lock->query_safe('LOCK TABLE idalloc_registry IN ACCESS EXCLUSIVE MODE');

	my $dir = PostgreSQL::Test::Utils::tempdir;
	PostgreSQL::Test::Utils::append_to_file("$dir/slow.sql",
		"SELECT end_id - start_id FROM idalloc_batch('slow', 500000);\n");
	my ($out, $err) = ("$dir/slow.out", "$dir/slow.err");
	my $waiter = start_psql_script($s1, "$dir/slow.sql", $out, $err,
		appname => 'slow_waiter', timeout => 180);
	# the persister's fetch of 'slow' waits for the lock on the authority
	ok($auth->poll_query_until('postgres', q{
		SELECT count(*) > 0 FROM pg_stat_activity
		 WHERE application_name = 'idalloc source' AND wait_event_type = 'Lock'}),
		"(j) the fetch for 'slow' hangs on the locked authority");

	my $served = 0;
	for my $k (1 .. 3)
	{
		my ($st) = sqlstate_of($s1, "SELECT * FROM idalloc_batch('side', 200000)");
		$served++ if $st eq '';
	}
	is($served, 3, "(j) meanwhile three batches of 'side', each a fetch from s2, were served");
	is($s1->safe_psql('postgres', q{
		SELECT count(*) FROM pg_stat_activity
		 WHERE application_name = 'slow_waiter' AND state = 'active'}), '1',
		"(j) while the caller of 'slow' was still waiting");

	$lock->query_safe('COMMIT');
	$lock->quit;
	$waiter->finish;
	is(slurp_file($out), "500000\n", "(j) that caller is served once the authority answers");
	$s1->append_conf('postgresql.conf', "idalloc.source_timeout = '3s'");
	$s1->reload;
}

# --- (h) failover of the authority to its synchronous standby ---------------------
{
	for my $node ($s1, $s2)
	{
		$node->safe_psql('postgres',
			"INSERT INTO got (client, id, n) SELECT 0, start_id, end_id - start_id FROM idalloc_batch('orders', 3000)");
		collect($node, $node->name . ' before the failover');
	}
	$auth->safe_psql('postgres',
		"INSERT INTO got (client, id, n) SELECT 0, start_id, end_id - start_id FROM idalloc_batch('orders', 3000)");
	collect($auth, 'authority before the failover');

	$auth->stop('immediate');
	$standby->promote;
	$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
	  or die "the standby was not promoted";
	my $ci = conninfo($standby);
	$s1->safe_psql('postgres', "SELECT idalloc_alter('orders', source => '$ci')");
	for my $node ($s1, $s2)
	{
		my $ok = 0;
		for (1 .. 30)
		{
			my ($st) = sqlstate_of($node,
				"INSERT INTO got (client, id, n) SELECT 0, start_id, end_id - start_id FROM idalloc_batch('orders', 3000)");
			if ($st eq '') { $ok = 1; last; }
			sleep 1;
		}
		ok($ok, '(h) ' . $node->name . ' allocates from the promoted standby');
		$node->safe_psql('postgres',
			"INSERT INTO got (client, id) SELECT 0, idalloc_one('orders') FROM generate_series(1, 2000)");
		collect($node, $node->name . ' after the failover');
	}
	$standby->safe_psql('postgres',
		"SELECT start_id, end_id FROM idalloc_batch('orders', 3000)") =~ /(\d+)\|(\d+)/;
	$ids->add_range('orders', 'promoted standby', $1, $2);
	is($ids->repeated, 0, '(h) no ID repeats across the failover (' . $ids->count . ' IDs in all)')
	  or diag join("\n", $ids->repeats);
}

$_->stop for ($s1, $s2, $standby);
done_testing();
