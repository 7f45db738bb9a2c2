# Copyright (c) idalloc authors
#
# G1 across pg_dump / restore.  The catalog table's rows are dumped
# (pg_extension_config_dump); the restore runs CREATE EXTENSION (which makes
# its own `default` row) and then loads the dumped rows.  The restore must
# succeed with --exit-on-error / ON_ERROR_STOP, every allocator must come
# back with its settings, exactly once, and each must continue at or above
# its dumped persisted end, i.e. above every ID the source database handed
# out before the dump.  Checked for:
#   - custom format restored with pg_restore --exit-on-error,
#   - the same with --single-transaction,
#   - plain format restored with psql -v ON_ERROR_STOP=1,
# and again after an immediate stop/start of the server (the restored
# positions are durable).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use IdallocTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = idalloc_node('dump', no_extension => 1);

my @conn = ('-h', $node->host, '-p', $node->port);
my $tmp = PostgreSQL::Test::Utils::tempdir;

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', 'CREATE EXTENSION idalloc');
$node->safe_psql(
	'src', q{
	SELECT idalloc_alter('default', block => 8);
	SELECT idalloc_create('orders', start => 100, block => 10);
	SELECT idalloc_create('users', block => 5, cache => 3);
	-- a dropped one and a rolled back one leave holes in the registry ids
	SELECT idalloc_create('gone', block => 4);
	SELECT idalloc_drop('gone');
	BEGIN; SELECT idalloc_create('never'); ROLLBACK;
	SELECT idalloc_create('late', start => 1000000000000, block => 2);
	-- kind tso (issue 9): its IDs are taken below with the clock a day
	-- ahead, so the restored copy's clock alone would not get above them
	SELECT idalloc_create('events', kind => 'tso');
	-- an application table using the allocator as a column default
	CREATE TABLE orders (id bigint PRIMARY KEY DEFAULT idalloc_one('orders'),
	                     note text);
	INSERT INTO orders (note) SELECT 'o' || g FROM generate_series(1, 25) g;
});

my @allocators = qw(default orders users late events);

# Hand out IDs in src; remember the highest of each allocator.
my %max;
for my $alloc (@allocators)
{
	my $call = one_call($alloc);
	my $clock =
	  $alloc eq 'events'
	  ? "SET client_min_messages = error; SET idalloc.debug_tso_clock_offset = '1d';"
	  : '';
	my $out = $node->safe_psql(
		'src', qq{$clock
		SELECT max(x) FROM (
		  SELECT $call AS x FROM generate_series(1, 37)
		  UNION ALL
		  SELECT end_id - 1 FROM idalloc_batch('$alloc', 6)) s});
	$max{$alloc} = $out;
}
# rolled back: handed out all the same
$max{orders} = $node->safe_psql(
	'src', q{BEGIN;
	INSERT INTO orders (note) SELECT 'r' || g FROM generate_series(1, 9) g;
	SELECT max(id) FROM orders;
	ROLLBACK;});

my %dumped_end;
my %settings;
for my $line (split /\n/,
	$node->safe_psql('src',
		'SELECT name, persisted_end, start, block, cache, kind FROM idalloc_registry ORDER BY name'))
{
	my ($name, $end, @rest) = split /\|/, $line;
	$dumped_end{$name} = $end;
	$settings{$name} = join('|', @rest);
}
is( join(',', sort keys %dumped_end),
	join(',', sort @allocators),
	'source registry holds the expected allocators');
for my $alloc (@allocators)
{
	cmp_ok($dumped_end{$alloc}, '>', $max{$alloc},
		"source: persisted end of $alloc is above its highest ID ($max{$alloc})");
}

# dumps
my $dump_c = "$tmp/src.dump";
my $dump_p = "$tmp/src.sql";
$node->command_ok([ 'pg_dump', @conn, '-Fc', '-f', $dump_c, 'src' ],
	'pg_dump -Fc');
$node->command_ok([ 'pg_dump', @conn, '-Fp', '-f', $dump_p, 'src' ],
	'pg_dump -Fp');
like(slurp_file($dump_p), qr/COPY public\.idalloc_registry /,
	'the plain dump carries the registry rows');

# the source keeps allocating after the dump (it is independent of the
# restored copies, nothing to check there but that it works)
$node->safe_psql('src', 'SELECT idalloc_one() FROM generate_series(1, 20)');

# restores
$node->command_ok([ 'createdb', @conn, 'dst_c' ], 'createdb dst_c');
$node->command_ok(
	[ 'pg_restore', @conn, '--exit-on-error', '-d', 'dst_c', $dump_c ],
	'pg_restore --exit-on-error into an empty database');

$node->command_ok([ 'createdb', @conn, 'dst_s' ], 'createdb dst_s');
$node->command_ok(
	[
		'pg_restore', @conn, '--exit-on-error', '--single-transaction',
		'-d', 'dst_s', $dump_c
	],
	'pg_restore --exit-on-error --single-transaction into an empty database');

$node->command_ok([ 'createdb', @conn, 'dst_p' ], 'createdb dst_p');
$node->command_ok(
	[
		'psql', @conn, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'dst_p', '-f',
		$dump_p
	],
	'plain dump restored with psql -v ON_ERROR_STOP=1');

my @dbs = qw(dst_c dst_s dst_p);

sub check_restored
{
	my ($db, $tag) = @_;

	is($node->safe_psql($db,
			"SELECT extversion FROM pg_extension WHERE extname = 'idalloc'"),
		'1.2', "$tag: extension idalloc exists");
	for my $alloc (@allocators)
	{
		is( $node->safe_psql($db,
				"SELECT count(*) FROM idalloc_registry WHERE name = '$alloc'"),
			'1', "$tag: allocator $alloc exists exactly once");
		is( $node->safe_psql($db,
				"SELECT start || '|' || block || '|' || cache || '|' || kind FROM idalloc_registry WHERE name = '$alloc'"),
			$settings{$alloc},
			"$tag: allocator $alloc keeps its start, block, cache and kind");
	}
	is( $node->safe_psql($db,
			"SELECT count(*) FROM idalloc_registry WHERE name IN ('gone', 'never')"),
		'0', "$tag: dropped / rolled back allocators do not come back");
	is($node->safe_psql($db, 'SELECT count(*) FROM orders'),
		'25', "$tag: application table restored");
	return;
}

sub check_continues
{
	my ($db, $tag) = @_;
	for my $alloc (@allocators)
	{
		my $call = one_call($alloc);
		my $first = $node->safe_psql($db, "SELECT $call");
		cmp_ok($first, '>', $max{$alloc},
			"$tag: first ID of $alloc is above every ID the source handed out ($max{$alloc})"
		);
		cmp_ok($first, '>=', $dumped_end{$alloc},
			"$tag: first ID of $alloc is at or above the dumped persisted end ($dumped_end{$alloc})"
		);
		my ($s, $e) = split /\|/,
		  $node->safe_psql($db,
			"SELECT start_id || '|' || end_id FROM idalloc_batch('$alloc', 5)");
		cmp_ok($s, '>', $first, "$tag: a batch of $alloc follows");
		is($e - $s, 5, "$tag: the batch of $alloc has 5 IDs");
	}
	return;
}

for my $db (@dbs)
{
	check_restored($db, $db);
	check_continues($db, $db);
	# the application table's default goes on without a key collision
	is( $node->psql($db, q{INSERT INTO orders (note) VALUES ('after restore')}),
		0, "$db: insert using DEFAULT idalloc_one('orders') succeeds");
	cmp_ok(
		$node->safe_psql($db,
			q{SELECT id FROM orders WHERE note = 'after restore'}),
		'>', $max{orders},
		"$db: the new row's id is above every id of the source");
	# the registry id sequence was restored too: a new allocator gets a
	# fresh registry id
	is($node->psql($db, q{SELECT idalloc_create('brand_new', block => 3)}),
		0, "$db: idalloc_create works after the restore");
	is($node->safe_psql($db, q{SELECT idalloc_one('brand_new')}),
		'1', "$db: the new allocator starts at its start");
}

# the restored positions are durable
$node->stop('immediate');
$node->start;
for my $db (@dbs)
{
	check_continues($db, "$db after crash");
}

# loading the registry data again over a database that has every allocator
# already (data-only restore): each row is merged, none moves backward
my %before;
for my $alloc (@allocators)
{
	$before{$alloc} = $node->safe_psql('dst_c',
		"SELECT next_id FROM idalloc_allocators WHERE name = '$alloc'");
}
$node->command_ok(
	[
		'pg_restore', @conn, '--exit-on-error', '--data-only',
		'-t', 'idalloc_registry', '-d', 'dst_c', $dump_c
	],
	'data-only restore of idalloc_registry over existing allocators');
for my $alloc (@allocators)
{
	is( $node->safe_psql('dst_c',
			"SELECT count(*) FROM idalloc_registry WHERE name = '$alloc'"),
		'1', "dst_c after a second load: $alloc still exists exactly once");
	my $call = one_call($alloc);
	cmp_ok($node->safe_psql('dst_c', "SELECT $call"),
		'>=', $before{$alloc},
		"dst_c after a second load: $alloc did not move backward ($before{$alloc})");
}

$node->stop;
done_testing();
