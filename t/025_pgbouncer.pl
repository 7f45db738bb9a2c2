# Copyright (c) idalloc authors
#
# idalloc behind pgbouncer (Debian's) in transaction pooling mode (issue
# 11): 12 pgbench clients share 3 server connections; each statement may
# run on another server backend.
#
#   (a) pooling is real: 12 clients, at most 3 server backends;
#   (b) cache 1: every ID unique, and each client's IDs increase (G2 holds
#       across sessions, so whichever backend served the client);
#   (c) cache 50: every ID unique; each server backend's IDs increase (G2
#       within a session: the session is the server backend, whose cache
#       serves whichever client it is lent to; a client can see its IDs go
#       down, which the README says);
#   (d) batches through the pooler: unique, contiguous, disjoint from the
#       rest.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use IdallocTest;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = idalloc_node('bouncer', sql => q{
	SELECT idalloc_create('plain');
	SELECT idalloc_create('cached', cache => 50);
	CREATE TABLE got (seq bigserial PRIMARY KEY, client int NOT NULL, alloc text NOT NULL,
					  id bigint NOT NULL, n bigint NOT NULL DEFAULT 1,
					  backend int NOT NULL DEFAULT pg_backend_pid());});

my $dir = PostgreSQL::Test::Utils::tempdir_short;
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $user = getpwuid($>);
PostgreSQL::Test::Utils::append_to_file("$dir/userlist.txt", qq{"$user" ""\n});
PostgreSQL::Test::Utils::append_to_file("$dir/pgbouncer.ini", join("\n",
	'[databases]',
	'postgres = host=' . $node->host . ' port=' . $node->port . ' dbname=postgres',
	'[pgbouncer]',
	'listen_addr = ',
	"listen_port = $port",
	"unix_socket_dir = $dir",
	'auth_type = trust',
	"auth_file = $dir/userlist.txt",
	'pool_mode = transaction',
	'default_pool_size = 3',
	'max_client_conn = 100',
	"logfile = $dir/pgbouncer.log",
	"pidfile = $dir/pgbouncer.pid",
	"admin_users = $user",
	''));
my $bouncer = IPC::Run::start([ 'pgbouncer', "$dir/pgbouncer.ini" ],
	'>', \my $bout, '2>', \my $berr);
my $up = 0;
for (1 .. 100)
{
	if (-S "$dir/.s.PGSQL.$port") { $up = 1; last; }
	select(undef, undef, undef, 0.1);
}
ok($up, 'pgbouncer listens') or diag slurp_file("$dir/pgbouncer.log");

my $script = "$dir/alloc.sql";
PostgreSQL::Test::Utils::append_to_file($script, q{
\set r random(1, 20)
INSERT INTO got (client, alloc, id) VALUES (:client_id, 'plain', idalloc_one('plain'));
INSERT INTO got (client, alloc, id) VALUES (:client_id, 'cached', idalloc_one('cached'));
\if :r = 1
INSERT INTO got (client, alloc, id, n) SELECT :client_id, 'plain', start_id, end_id - start_id FROM idalloc_batch('plain', 1000);
INSERT INTO got (client, alloc, id, n) SELECT :client_id, 'cached', start_id, end_id - start_id FROM idalloc_batch('cached', 1000);
\endif
});
my ($out, $err) = ('', '');
my $ok = IPC::Run::run([ 'pgbench', '-n', '-c', '12', '-j', '4', '-T', '4', '-f', $script,
	'-h', $dir, '-p', $port, 'postgres' ], '>', \$out, '2>', \$err);
ok($ok, 'pgbench with 12 clients through pgbouncer (transaction pooling)') or diag $err;
like($out, qr/number of failed transactions: 0 /, 'no transaction failed') or diag $out;

# (a)
my ($clients, $backends) = split /\|/, $node->safe_psql('postgres',
	'SELECT count(DISTINCT client), count(DISTINCT backend) FROM got');
is($clients, 12, '(a) 12 clients took IDs');
cmp_ok($backends, '<=', 3, "(a) on at most 3 server backends ($backends)");

# (b), (c), (d): uniqueness over single IDs and batch ranges
for my $alloc ('plain', 'cached')
{
	my $ids = IdallocTest::IdSet->new;
	for my $line (lines($node->safe_psql('postgres',
		"SELECT id, id + n FROM got WHERE alloc = '$alloc'")))
	{
		my ($s, $e) = split /\|/, $line;
		$ids->add_range($alloc, 'got', $s, $e);
	}
	cmp_ok($ids->count, '>', 1000, "$alloc: " . $ids->count . ' IDs taken');
	is(join("\n", $ids->repeats), '', "(b)(c)(d) $alloc: no ID twice, batches included");
}
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (
	  SELECT id, lag(id + n - 1) OVER (PARTITION BY client ORDER BY seq) AS prev
	    FROM got WHERE alloc = 'plain') s
	 WHERE id <= prev}), '0', '(b) cache 1: each client\'s IDs increase, whichever backend served it');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (
	  SELECT id, lag(id + n - 1) OVER (PARTITION BY backend ORDER BY seq) AS prev
	    FROM got WHERE alloc = 'cached') s
	 WHERE id <= prev}), '0', '(c) cache 50: each server backend\'s IDs increase');
my $down = $node->safe_psql('postgres', q{
	SELECT count(*) FROM (
	  SELECT id, lag(id) OVER (PARTITION BY client ORDER BY seq) AS prev
	    FROM got WHERE alloc = 'cached') s
	 WHERE id < prev});
note("cache 50: a client saw its ID go down $down times (the cache is the server backend's)");

$bouncer->kill_kill;
$node->stop;
done_testing();
