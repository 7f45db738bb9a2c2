# Copyright (c) idalloc authors
#
# Without shared_preload_libraries = 'idalloc' there is no shared memory:
# CREATE EXTENSION and every function must fail with SQLSTATE 55000 and a
# hint naming the setting, never crash the server (G6, "Target platform").
#   1. a node that never preloaded idalloc: CREATE EXTENSION fails, leaves
#      nothing behind, the server keeps running;
#   2. a node where the extension was created with the preload, restarted
#      without it: every function fails with 55000, the server keeps
#      running; with the preload back, nothing was lost.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use IdallocTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

sub fails_55000
{
	my ($node, $sql, $name) = @_;
	$name =~ s/\s+/ /g;
	my $stderr = fails_with($node, $sql, '55000', $name);
	like($stderr, qr/HINT:.*shared_preload_libraries/,
		"$name: the hint names shared_preload_libraries");
	unlike($stderr, qr/server closed the connection|terminated abnormally/,
		"$name: the backend did not die");
	is($node->safe_psql('postgres', 'SELECT 1'),
		'1', "$name: the server keeps running");
	return;
}

############################################################################
# 1. never preloaded
my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->start;

fails_55000($plain, 'CREATE EXTENSION idalloc',
	'CREATE EXTENSION without the preload');
is( $plain->safe_psql('postgres',
		"SELECT count(*) FROM pg_extension WHERE extname = 'idalloc'"),
	'0', 'the failed CREATE EXTENSION left no extension behind');
is( $plain->safe_psql('postgres',
		"SELECT count(*) FROM pg_class WHERE relname LIKE 'idalloc%'"),
	'0', 'the failed CREATE EXTENSION left no relations behind');
# loading the library by hand changes nothing
fails_55000($plain, "LOAD 'idalloc'; CREATE EXTENSION idalloc",
	'CREATE EXTENSION after LOAD');
fails_55000($plain, 'BEGIN; CREATE EXTENSION idalloc; COMMIT',
	'CREATE EXTENSION in a transaction block');
like(slurp_file($plain->logfile), qr/ERROR: .*\n.*HINT: .*shared_preload_libraries/,
	'the error and its hint are in the server log');
unlike(
	slurp_file($plain->logfile),
	qr/terminated by signal|(?:server process|client backend) \(PID \d+\) exited with exit code [1-9]/,
	'no backend crashed');
$plain->stop;

############################################################################
# 2. created with the preload, then restarted without it
my $node = idalloc_node('unload');
$node->safe_psql('postgres', q{SELECT idalloc_create('x', block => 5)});
my $max_default = $node->safe_psql('postgres',
	'SELECT max(idalloc_one()) FROM generate_series(1, 12)');
my $max_x = $node->safe_psql('postgres',
	q{SELECT max(idalloc_one('x')) FROM generate_series(1, 12)});

$node->adjust_conf('postgresql.conf', 'shared_preload_libraries', "''");
$node->restart;
is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'),
	'', 'restarted without the preload');

my @calls = (
	'SELECT idalloc_one()',
	"SELECT idalloc_one('default')",
	"SELECT idalloc_one('x')",
	"SELECT idalloc_one('no_such_allocator')",
	'SELECT * FROM idalloc_batch(1)',
	"SELECT * FROM idalloc_batch('x', 3)",
	"SELECT idalloc_create('z')",
	"SELECT idalloc_drop('default')",
	"SELECT idalloc_drop('x')",
	"SELECT idalloc_alter('x', block => 9)",
	"SELECT idalloc_advance('x', 1000)",
	'SELECT * FROM idalloc_allocators',
	"SELECT idalloc_sync('x')",
	'SELECT * FROM idalloc_caches',
	q{INSERT INTO idalloc_registry (name, start, block, persisted_end, cache, kind)
	  VALUES ('sneaky', 1, 1, 1, 1, 'counter')},
	# as a column default
	'CREATE TEMP TABLE t (id bigint DEFAULT idalloc_one()); INSERT INTO t DEFAULT VALUES',
);
for my $sql (@calls)
{
	fails_55000($node, $sql, "without the preload: $sql");
}

# nothing changed
is( $node->safe_psql('postgres',
		'SELECT string_agg(name, \',\' ORDER BY name) FROM idalloc_registry'),
	'default,x', 'no allocator was created or dropped');
unlike(
	slurp_file($node->logfile),
	qr/terminated by signal|(?:server process|client backend) \(PID \d+\) exited with exit code [1-9]/,
	'no backend crashed');

# back with the preload: everything works and continues above what was
# handed out
$node->adjust_conf('postgresql.conf', 'shared_preload_libraries', "'idalloc'");
$node->restart;
cmp_ok($node->safe_psql('postgres', 'SELECT idalloc_one()'),
	'>', $max_default,
	'with the preload back, default continues above its IDs');
cmp_ok($node->safe_psql('postgres', q{SELECT idalloc_one('x')}),
	'>', $max_x, 'with the preload back, x continues above its IDs');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM idalloc_registry WHERE name IN ('z', 'sneaky')}),
	'0', 'with the preload back, no allocator appeared');
is($node->safe_psql('postgres', q{SELECT block FROM idalloc_registry WHERE name = 'x'}),
	'5', 'x kept its block (the failed idalloc_alter changed nothing)');

$node->stop;
done_testing();
