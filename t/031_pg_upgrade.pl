# Copyright (c) idalloc authors
#
# pg_upgrade from PostgreSQL 15 to the major under test (issue 18; SPEC G1
# [1.2]: unique "after pg_upgrade to a newer major").  Run by the 17 and 18
# suites of the matrix, with Debian's 15 as the old cluster (idalloc
# installed there by scripts/test.sh); on 15 itself there is nothing to
# upgrade to, and the file is skipped with that reason.
#
# For each mode, copy and --link, a 15 cluster with idalloc in use:
#   database "postgres": a cached allocator (cache 50, ranges held by two
#   sessions), a tso allocator, one whose step has grown (batches in a
#   burst), and default; IDs handed out right up to a clean stop;
#   database "old10": an installation of idalloc 1.0, in use.
# Then pg_upgrade to the new major, and:
#   (a) pg_upgrade succeeds (idalloc's guard lets its schema restore
#       through: binary-upgrade mode);
#   (b) every allocator goes on above every ID handed out before (no
#       repeat), and the gap is at most the window persisted before the
#       stop (G5; the clean-shutdown state file stays with the old cluster,
#       so the new one resumes at the persisted end: the gap is reported);
#   (c) ALTER EXTENSION idalloc UPDATE works on the new major (1.2: nothing
#       to do), and "old10" is updated 1.0 -> 1.2 there and goes on above
#       its IDs;
#   (d) a clean restart of the new cluster loses nothing more.
use strict;
use warnings;

use File::Path qw(rmtree);
use FindBin;
use lib $FindBin::RealBin;
use IdallocTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my ($major) = `pg_config --version` =~ /PostgreSQL (\d+)/;
plan skip_all => 'pg_upgrade from 15 is tested by the suites of 17 and 18 (nothing to upgrade PostgreSQL 15 to)'
  if !defined $major || $major <= 15;

my $old_install = '/usr/lib/postgresql/15';
# scripts/test.sh installs idalloc for 15 before the other majors' suites
die "idalloc is not installed for PostgreSQL 15 ($old_install/lib/idalloc.so)"
  unless -f "$old_install/lib/idalloc.so";

my $conf = "shared_preload_libraries = 'idalloc'\n";

for my $mode (qw(copy link))
{
	my $ids = IdallocTest::IdSet->new;
	my $old = PostgreSQL::Test::Cluster->new("old15_$mode", install_path => $old_install);
	$old->init;
	$old->append_conf('postgresql.conf', $conf);
	$old->start;
	$old->safe_psql('postgres', q{
		CREATE EXTENSION idalloc;
		SELECT idalloc_create('cached', block => 1000, cache => 50);
		SELECT idalloc_create('timed', kind => 'tso');
		SELECT idalloc_create('grown', block => 10);
		CREATE DATABASE old10;});
	$old->safe_psql('old10', q{CREATE EXTENSION idalloc VERSION '1.0';
	                          SELECT idalloc_create('legacy', block => 7);});

	# two sessions hold cached ranges of 'cached'
	my @holders = map { $old->background_psql('postgres') } 1 .. 2;
	take_ids($ids, $_, 'cached', 3, "$mode: a holder") for @holders;
	# a burst of batches: the step of 'grown' doubles from its block
	for my $i (1 .. 40)
	{
		take_batch($ids, $old, 'grown', 50, "$mode: burst $i") if $i % 8 == 0;
		$ids->add_range('grown', "$mode: burst",
			split /\|/, $old->safe_psql('postgres',
				q{SELECT start_id || '|' || end_id FROM idalloc_batch('grown', 50)}));
	}
	my $step = $old->safe_psql('postgres', q{SELECT step FROM idalloc_allocators WHERE name = 'grown'});
	cmp_ok($step, '>', 10, "$mode: the step of 'grown' grew from its block 10 ($step)");
	take_ids($ids, $old, 'timed', 20, "$mode: before");
	take_ids($ids, $old, 'default', 20, "$mode: before");
	$ids->add_ids('legacy', "$mode: before",
		lines($old->safe_psql('old10', q{SELECT idalloc_one('legacy') FROM generate_series(1, 30)})));
	# right up to the stop
	take_ids($ids, $old, $_, 5, "$mode: last before the stop") for qw(cached grown default);
	my %persisted = persisted_until($old);
	$_->quit for @holders;

	# Debian 12's 15.20 gives every column it creates a hidden option
	# pg_attver, which 15's own pg_dump leaves out but 17.11's and 18.6's
	# (which pg_upgrade runs) dump, and the new server refuses
	# ('unrecognized parameter "pg_attver"'): pg_upgrade of any database,
	# with or without idalloc, fails.  Strip it first, as the README's
	# "Upgrading PostgreSQL" says.
	for my $db (lines($old->safe_psql('postgres',
		'SELECT datname FROM pg_database WHERE datallowconn')))
	{
		$old->safe_psql($db, q{
			UPDATE pg_catalog.pg_attribute
			   SET attoptions = (SELECT pg_catalog.array_agg(o)
			                       FROM pg_catalog.unnest(attoptions) o
			                      WHERE o NOT LIKE 'pg_attver=%')
			 WHERE attrelid >= 16384 AND attoptions::text LIKE '%pg_attver=%'});
	}
	$old->stop;

	# --- (a) pg_upgrade ------------------------------------------------------
	my $new = PostgreSQL::Test::Cluster->new("new${major}_$mode");
	# 18's initdb turns data checksums on, and pg_upgrade needs the old
	# cluster's setting (Debian's 15 clusters, and this one, have none)
	$new->init(extra => $major >= 18 ? ['--no-data-checksums'] : []);
	$new->append_conf('postgresql.conf', $conf);
	my $workdir = "$PostgreSQL::Test::Utils::tmp_check/upgrade_$mode";
	rmtree($workdir);
	mkdir $workdir or die "mkdir $workdir: $!";
	chdir $workdir or die "chdir $workdir: $!";
	command_ok(
		[
			'pg_upgrade', '--no-sync',
			'-d', $old->data_dir, '-D', $new->data_dir,
			'-b', "$old_install/bin", '-B', $new->config_data('--bindir'),
			'-s', $new->host, '-p', $old->port, '-P', $new->port,
			$mode eq 'link' ? '--link' : '--copy'
		],
		"(a) $mode: pg_upgrade from 15 to $major");
	chdir $FindBin::RealBin;
	$new->start;

	# --- (b) allocation goes on ------------------------------------------------
	for my $alloc (qw(cached grown default))
	{
		my $max = $ids->max($alloc);
		my ($first) = take_ids($ids, $new, $alloc, 5, "(b) $mode: after");
		cmp_ok($first, '>', $max, "(b) $mode: $alloc goes on above every ID before ($max)");
		cmp_ok($first, '<=', $persisted{$alloc},
			"(b) $mode: $alloc resumes within the window persisted before the stop ($persisted{$alloc})");
		diag sprintf('%s, %s: the upgrade cost a gap of %d IDs (the rest of the persisted window)',
			$mode, $alloc, $first - $max - 1);
	}
	my $tmax = $ids->max('timed');
	my ($t) = take_ids($ids, $new, 'timed', 5, "(b) $mode: after");
	cmp_ok($t, '>', $tmax, "(b) $mode: the tso allocator goes on above its last ID");
	no_repeats($ids, "(b) $mode: no ID handed out twice across the upgrade");

	# --- (c) ALTER EXTENSION UPDATE on the new major ------------------------------
	is($new->safe_psql('postgres', q{ALTER EXTENSION idalloc UPDATE;
		SELECT extversion FROM pg_extension WHERE extname = 'idalloc'}),
		'1.2', "(c) $mode: ALTER EXTENSION idalloc UPDATE on $major (1.2 already)");
	is($new->safe_psql('old10', q{SELECT extversion FROM pg_extension WHERE extname = 'idalloc'}),
		'1.0', "(c) $mode: old10 is still 1.0 after pg_upgrade");
	$ids->add_ids('legacy', "(c) $mode: 1.0 objects on $major",
		lines($new->safe_psql('old10', q{SELECT idalloc_one('legacy') FROM generate_series(1, 5)})));
	is($new->safe_psql('old10', q{ALTER EXTENSION idalloc UPDATE;
		SELECT extversion FROM pg_extension WHERE extname = 'idalloc'}),
		'1.2', "(c) $mode: old10 updated from 1.0 to 1.2 on $major");
	$ids->add_ids('legacy', "(c) $mode: updated",
		lines($new->safe_psql('old10', q{SELECT idalloc_one('legacy') FROM generate_series(1, 5)})));
	no_repeats($ids, "(c) $mode: no ID of the 1.0 installation handed out twice");

	# --- (d) a clean restart of the new cluster ------------------------------------
	my %max_before = map { $_ => $ids->max($_) } qw(cached grown default);
	$new->restart;
	for my $alloc (qw(grown default))
	{
		my ($first) = take_ids($ids, $new, $alloc, 1, "(d) $mode: after a clean restart");
		is($first, $max_before{$alloc} + 1, "(d) $mode: $alloc resumes exactly where it stopped");
	}
	no_repeats($ids, "(d) $mode: no ID handed out twice");
	$new->stop;
}

done_testing();
