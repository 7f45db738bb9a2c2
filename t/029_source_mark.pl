# Copyright (c) idalloc authors
#
# A sourced allocator's high-water mark is durable (issue 17, defect 2;
# SPEC G1 and "Sources").  A sourced server never installs a block that
# starts below one it received before, and that mark (the end of the
# highest block received, written into the allocator's row and flushed
# before the block is handed out) survives everything the server goes
# through.  The authority "goes backward" here by dropping and creating its
# allocator again (as a restore from an old backup, or a failover to a
# lagging standby, would leave it): its counter starts again at 1.
#
#   (a) while the sourced server is up: the next fetch is refused (XX001,
#       naming the authority and the range; that call consumes nothing),
#       and the next call is served from a block that the persister asked
#       big enough to pass the mark, above everything handed out before;
#   (b) the same after a clean restart of the sourced server (before the
#       fix the mark lived in shared memory only: the first ID was 1 again);
#   (c) the same after an immediate stop;
#   (d) the same in a database restored from a pg_dump of the sourced
#       server's database (the dump carries the mark in persisted_end);
#   (e) idalloc_alter(source => ...) to an authority whose counter is
#       behind: refused the same way, never a repeat;
#   (f) a restored row merged into the live allocator (COPY into the
#       table, as pg_restore does) raises the mark, and what the server
#       held below it is not handed out;
#   and the row's persisted_end is at least every ID handed out; each time
#   exactly one block was refused (logged once as a WARNING).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use IdallocTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $ids = IdallocTest::IdSet->new;

my $auth = idalloc_node('authority',
	sql => q{SELECT idalloc_create('m', block => 100);
	         CREATE DATABASE other;});
$auth->safe_psql('other', q{CREATE EXTENSION idalloc; SELECT idalloc_create('m', block => 100);});
my $conninfo = sprintf('host=%s port=%d dbname=postgres', $auth->host, $auth->port);
my $other = sprintf('host=%s port=%d dbname=other', $auth->host, $auth->port);

my $src = idalloc_node('sourced');
$src->safe_psql('postgres',
	"SELECT idalloc_create('m', block => 100, source => " . sql_literal($conninfo) . ')');

# the authority's allocator starts again at 1
sub authority_backward
{
	my ($db) = @_;
	$auth->safe_psql($db // 'postgres',
		q{SELECT idalloc_drop('m'); SELECT idalloc_create('m', block => 100);});
	is($auth->safe_psql($db // 'postgres', q{SELECT next_id FROM idalloc_allocators WHERE name = 'm'}),
		'1', 'the authority\'s allocator m starts again at 1');
}

# Ask for IDs of m until the sourced server hands one out: a refused block
# is XX001 (the authority went backward), anything else fails.  Asserts
# that the first ID is above every ID handed out before (and records it);
# returns the number of refusals.
sub next_after
{
	my ($tag, $db, $sql) = @_;
	$sql //= q{SELECT idalloc_one('m')};
	my ($refused, $got, $err) = (0, undef, '');
	for my $try (1 .. 60)
	{
		my ($state, $out, $e) = sqlstate_of($src, $sql, dbname => $db // 'postgres');
		if ($state eq '')
		{
			$got = $out;
			last;
		}
		$err = $e;
		last if $state ne 'XX001';
		$refused++;
		like($e, qr/the authority \(host=\S+ port=\d+ dbname=\w+\) handed out a block of allocator "m" below one it handed out before/,
			"$tag: the refusal names the authority and the allocator") if $refused == 1;
		usleep(100_000);
	}
	ok(defined $got, "$tag: IDs are handed out again (after $refused refusal(s))") or diag $err;
	my @got = lines($got);
	my $max = $ids->max('m');
	# a restored database is another allocator that continues this one's
	# ID space: compared with it, recorded apart
	my $key = ($db // 'postgres') eq 'postgres' ? 'm' : "m in $db";
	my ($first) = sort { $a <=> $b } (map { split /\|/ } @got);
	cmp_ok($first // 0, '>', $max, "$tag: the first ID ($first) is above every ID handed out before ($max)");
	if ($sql =~ /idalloc_batch/)
	{
		my ($s, $e) = split /\|/, $got[0];
		$ids->add_range($key, $tag, $s, $e);
	}
	else
	{
		$ids->add_ids($key, $tag, @got);
	}
	return $refused;
}

# the mark in the row covers every ID handed out
sub mark_covers
{
	my ($tag, $db) = @_;
	my $mark = $src->safe_psql($db // 'postgres',
		q{SELECT persisted_end FROM idalloc_registry WHERE name = 'm'});
	cmp_ok($mark, '>', $ids->max('m'),
		"$tag: the row's persisted_end ($mark) is above every ID handed out");
}

# --- before anything goes backward ---------------------------------------------
take_ids($ids, $src, 'm', 250, 'start');
take_batch($ids, $src, 'm', 40, 'start');
mark_covers('start');

# --- (a) while up -----------------------------------------------------------------
authority_backward();
# larger than what the server holds: it must fetch
my $refused = next_after('(a) up', 'postgres',
	q{SELECT start_id || '|' || end_id FROM idalloc_batch('m', 1000)});
is($refused, 1, '(a) up: the first block the authority handed out after going backward was refused');
take_ids($ids, $src, 'm', 50, '(a) up, later');
no_repeats($ids, '(a) no ID handed out twice');

# --- (b) a clean restart -----------------------------------------------------------
mark_covers('(b) before the restart');
authority_backward();
$src->restart;
$refused = next_after('(b) clean restart');
is($refused, 1, '(b) clean restart: the mark survived (a block below it was refused)');
take_ids($ids, $src, 'm', 20, '(b) clean restart, later');
no_repeats($ids, '(b) no ID handed out twice across a clean restart');

# --- (c) an immediate stop -----------------------------------------------------------
take_ids($ids, $src, 'm', 150, '(c) before');
mark_covers('(c) before the crash');
authority_backward();
$src->stop('immediate');
$src->start;
$refused = next_after('(c) immediate stop');
is($refused, 1, '(c) immediate stop: the mark survived (a block below it was refused)');
no_repeats($ids, '(c) no ID handed out twice across an immediate stop');

# --- (d) dump and restore -------------------------------------------------------------
take_ids($ids, $src, 'm', 30, '(d) before the dump');
mark_covers('(d) before the dump');
my $dump = $src->basedir . '/sourced.dump';
$src->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $src->connstr('postgres') ],
	'(d) pg_dump of the sourced server\'s database');
$src->safe_psql('postgres', 'CREATE DATABASE restored');
$src->command_ok([ 'pg_restore', '--exit-on-error', '-d', $src->connstr('restored'), $dump ],
	'(d) pg_restore into a new database');
mark_covers('(d) the restored row');
authority_backward();
$refused = next_after('(d) restored database', 'restored');
is($refused, 1, '(d) restored: the mark came with the dump (a block below it was refused)');
no_repeats($ids, '(d) no ID handed out twice by the restored database');

# --- (e) another authority, behind -------------------------------------------------------
take_ids($ids, $src, 'm', 10, '(e) before');
$src->safe_psql('postgres', "SELECT idalloc_alter('m', source => " . sql_literal($other) . ')');
# what the server holds of the old authority is still its own; a batch
# larger than that must come from the new one
# (the persister may have fetched ahead from the new authority, and had
# that block refused, before this call: counted in the log below)
next_after('(e) altered source', 'postgres',
	q{SELECT start_id || '|' || end_id FROM idalloc_batch('m', 500)});
mark_covers('(e) after the alter');
$src->restart;
take_ids($ids, $src, 'm', 10, '(e) after a restart');
no_repeats($ids, '(e) no ID handed out twice across the change of authority');

# --- (f) a restored row merged into the live allocator ---------------------------
# (as pg_restore's COPY into an existing installation does): its mark is
# raised to the row's, and what the server held below it (its current block,
# the spare, cached ranges) is let go
take_ids($ids, $src, 'm', 5, '(f) before');
my $restored_mark = $ids->max('m') + 100_000;
my $display = $src->safe_psql('postgres', q{SELECT source FROM idalloc_registry WHERE name = 'm'});
$src->safe_psql('postgres', qq{COPY idalloc_registry (start, block, persisted_end, cache, name, kind, source) FROM STDIN;
1	100	$restored_mark	1	m	counter	$display
\\.
});
is($src->safe_psql('postgres', q{SELECT persisted_end FROM idalloc_registry WHERE name = 'm'}),
	$restored_mark, '(f) the merged row raised the mark');
# (the authority is below the restored mark: its next block is refused
# once, then passed, as in (a))
next_after('(f) after the merge');
cmp_ok($ids->max('m'), '>=', $restored_mark,
	'(f) the next ID is at or above the restored mark (what was held below it was let go)');
no_repeats($ids, '(f) no ID handed out twice');

# each time, one block was refused, and the next one (asking for enough
# IDs to pass the mark) was used above the mark
my $log = slurp_file($src->logfile);
my $warnings = () = $log =~ /WARNING:  the authority \(.*?\) handed out a block of allocator "m" below/g;
is($warnings, 6, "each time the authority went backward, one block was refused and logged ($warnings)");

$src->stop;
$auth->stop;
done_testing();
