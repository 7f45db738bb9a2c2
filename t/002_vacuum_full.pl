# Copyright (c) idalloc authors
#
# G1 across VACUUM FULL of the catalog table.  VACUUM FULL rewrites
# idalloc_registry into a new relfilenode; block advances are in-place
# writes of its rows, so they must reach the new file (and the rewrite must
# copy the latest persisted end), or IDs repeat after the next crash.
#
#   1. allocate, VACUUM FULL, allocate (advances land in the new file),
#      immediate stop/start: no repeat, bounded gap;
#   2. allocate, VACUUM FULL as the very last thing before the crash;
#   3. VACUUM FULL repeatedly while another session allocates and commits
#      in a loop, then immediate stop/start: no advance lost.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use IdallocTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = idalloc_node('vacfull');
$node->safe_psql(
	'postgres', q{
	SELECT idalloc_alter('default', block => 7);
	SELECT idalloc_create('v', block => 5);
	SELECT idalloc_create('w', start => 500, block => 3);
	-- dead tuples for VACUUM FULL to squeeze out
	SELECT idalloc_create('tmp' || g) FROM generate_series(1, 5) g;
	SELECT idalloc_drop('tmp' || g) FROM generate_series(1, 5) g;
	CREATE TABLE got (alloc text NOT NULL, id bigint NOT NULL);
	CREATE TABLE stop_flag (x int);
});

my @allocators = qw(default v w);
my $ids = IdallocTest::IdSet->new;

sub allocate
{
	my ($tag, $n) = @_;
	take_ids($ids, $node, $_, $n, $tag) for @allocators;
	# a rolled back one too (IDs are still handed out)
	$ids->add_ids('v', "$tag/rollback",
		lines($node->safe_psql('postgres',
			"BEGIN; SELECT idalloc_one('v') FROM generate_series(1, 4); ROLLBACK;")));
	return;
}

# The table rows must carry what the live state says is persisted.
sub check_table_matches_view
{
	my ($tag) = @_;
	my $mismatch = $node->safe_psql(
		'postgres', q{
		SELECT string_agg(r.name || ': table ' || r.persisted_end
		                  || ' view ' || a.persisted_until, ', ')
		  FROM idalloc_registry r JOIN idalloc_allocators a USING (name)
		 WHERE r.persisted_end <> a.persisted_until});
	is($mismatch, '',
		"$tag: persisted_end in idalloc_registry equals persisted_until of the live allocator"
	);
	return;
}

sub relfilenode
{
	return $node->safe_psql('postgres',
		"SELECT pg_relation_filenode('idalloc_registry')");
}

############################################################################
# 1. VACUUM FULL between allocations
allocate('1/before', 23);
my $rfn = relfilenode();
$node->safe_psql('postgres', 'VACUUM FULL idalloc_registry');
isnt(relfilenode(), $rfn, '1: VACUUM FULL rewrote idalloc_registry');
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM idalloc_registry WHERE name LIKE 'tmp%'"),
	'0', '1: dropped allocators stay dropped after VACUUM FULL');
allocate('1/after', 23);
check_table_matches_view('1');
my %persisted = persisted_until($node);

$node->stop('immediate');
$node->start;
check_first_after($node, $ids, '1', \%persisted, @allocators);
no_repeats($ids, '1: no ID repeated after VACUUM FULL + crash');

############################################################################
# 2. VACUUM FULL (and VACUUM FULL of the whole database) right before the
# crash, nothing allocated after it
allocate('2/before', 17);
$node->safe_psql('postgres', 'VACUUM FULL idalloc_registry');
$node->safe_psql('postgres', 'VACUUM FULL');
check_table_matches_view('2');
%persisted = persisted_until($node);
$node->stop('immediate');
$node->start;
check_first_after($node, $ids, '2', \%persisted, @allocators);
no_repeats($ids, '2: no ID repeated when VACUUM FULL precedes the crash');

############################################################################
# 3. VACUUM FULL while another session allocates
$node->safe_psql(
	'postgres', q{
	CREATE PROCEDURE alloc_loop() LANGUAGE plpgsql AS $$
	BEGIN
		WHILE NOT EXISTS (SELECT 1 FROM stop_flag) LOOP
			INSERT INTO got VALUES ('v', idalloc_one('v')),
			                       ('w', idalloc_one('w')),
			                       ('default', idalloc_one());
			COMMIT;
		END LOOP;
	END $$;
});

my $bg = $node->background_psql('postgres');
$bg->query_until(qr/loop started/, "\\echo loop started\nCALL alloc_loop();\n\\echo loop done\n");

my $rounds = 8;
my $vacuums = 0;
for my $round (1 .. $rounds)
{
	# let the loop make progress (several block advances) between rewrites
	my $have = $node->safe_psql('postgres', 'SELECT count(*) FROM got');
	$node->poll_query_until('postgres',
		"SELECT count(*) >= $have + 60 FROM got")
	  or die "allocation loop makes no progress";
	$rfn = relfilenode();
	$node->safe_psql('postgres', 'VACUUM FULL idalloc_registry');
	$vacuums++ if relfilenode() ne $rfn;
}
is($vacuums, $rounds, "3: $rounds VACUUM FULL rewrites ran while the loop allocated");
my $have = $node->safe_psql('postgres', 'SELECT count(*) FROM got');
$node->poll_query_until('postgres', "SELECT count(*) >= $have + 60 FROM got")
  or die "allocation loop makes no progress";
$node->safe_psql('postgres', 'INSERT INTO stop_flag VALUES (1)');
$bg->query_until(qr/loop done/, '');
$bg->quit;

is( $node->safe_psql('postgres',
		'SELECT count(*) - count(DISTINCT (alloc, id)) FROM got'),
	'0', '3: no duplicate among the IDs taken during the VACUUM FULLs');
for my $alloc (@allocators)
{
	$ids->add_ids($alloc, '3/loop',
		lines($node->safe_psql('postgres',
			"SELECT id FROM got WHERE alloc = '$alloc'")));
}
cmp_ok($ids->distinct('v'), '>', 500,
	'3: the loop allocated many IDs of v (many block advances)');
check_table_matches_view('3');
%persisted = persisted_until($node);

$node->stop('immediate');
$node->start;
check_first_after($node, $ids, '3', \%persisted, @allocators);
allocate('3/after', 11);
no_repeats($ids, '3: no ID repeated after concurrent VACUUM FULL + crash');

$node->stop;
done_testing();
