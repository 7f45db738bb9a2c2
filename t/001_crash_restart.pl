# Copyright (c) idalloc authors
#
# G1 (unique forever) and G5 (bounded gap) across crashes and restarts.
#
# IDs handed out by idalloc_one() / idalloc_one(name) / idalloc_batch(...),
# in autocommit statements, in ROLLED BACK transactions, in transactions
# still open at the time of the crash, and in sessions running with
# synchronous_commit = off, must never be handed out again after
#   (a) an immediate shutdown (pg_ctl stop -m immediate) and start,
#   (b) kill -9 of a backend (postmaster crash-restart),
#   (c) a clean restart.
# After a crash, the first new ID of each allocator must be above every ID
# handed out before, and at most the persisted end shown by
# idalloc_allocators just before the crash (a crash loses at most the rest
# of the current block).
#
# Small blocks (5, 7, 10) make many block advances happen, so that each
# crash lands in the middle of a block.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use IdallocTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = idalloc_node('crash', conf => "restart_after_crash = on\n");
$node->safe_psql(
	'postgres', q{
	SELECT idalloc_alter('default', block => 7);
	SELECT idalloc_create('a', block => 10);
	SELECT idalloc_create('b', start => 1000, block => 5);
	SELECT idalloc_create('big');   -- default block (200000)
	CREATE TABLE sink (alloc text, id bigint);
});

my @allocators = qw(default a b big);

# Every ID ever handed out, per allocator.
my $ids = IdallocTest::IdSet->new;

# A mixed workload; $tag names where the IDs came from.
sub workload
{
	my ($tag) = @_;

	# plain autocommit calls
	take_ids($ids, $node, 'default', 13, "$tag/one");
	take_ids($ids, $node, 'a',       23, "$tag/one(a)");
	take_ids($ids, $node, 'b',       17, "$tag/one(b)");
	take_ids($ids, $node, 'big',     5,  "$tag/one(big)");
	record_batches($ids, 'default', "$tag/batch",
		$node->safe_psql('postgres', 'SELECT * FROM idalloc_batch(4)'), 4);
	# larger than the block: advances by the batch plus a block
	record_batches($ids, 'b', "$tag/batch(b)",
		$node->safe_psql('postgres', "SELECT * FROM idalloc_batch('b', 12)"),
		12);

	# rolled back transactions: IDs are not given back (G4)
	my $out = $node->safe_psql(
		'postgres', q{
		BEGIN;
		INSERT INTO sink SELECT 'a', idalloc_one('a') FROM generate_series(1, 12)
			RETURNING id;
		ROLLBACK;
	});
	$ids->add_ids('a', "$tag/rollback(a)", lines($out));
	$out = $node->safe_psql(
		'postgres', q{
		BEGIN;
		SELECT start_id || '|' || end_id FROM idalloc_batch('b', 8);
		ROLLBACK;
	});
	record_batches($ids, 'b', "$tag/rollback-batch(b)", $out, 8);
	$out = $node->safe_psql(
		'postgres', q{
		BEGIN;
		SELECT idalloc_one() FROM generate_series(1, 9);
		SAVEPOINT s;
		SELECT idalloc_one() FROM generate_series(1, 3);
		ROLLBACK TO SAVEPOINT s;
		ROLLBACK;
	});
	$ids->add_ids('default', "$tag/rollback-savepoint", lines($out));

	# synchronous_commit = off: a committed transaction whose commit record
	# may not be flushed, and a rolled back one
	$out = $node->safe_psql(
		'postgres', q{
		SET synchronous_commit = off;
		INSERT INTO sink SELECT 'a', idalloc_one('a') FROM generate_series(1, 11)
			RETURNING id;
	});
	$ids->add_ids('a', "$tag/async-commit(a)", lines($out));
	$out = $node->safe_psql(
		'postgres', q{
		SET synchronous_commit = off;
		BEGIN;
		INSERT INTO sink SELECT 'default', idalloc_one() FROM generate_series(1, 8)
			RETURNING id;
		ROLLBACK;
	});
	$ids->add_ids('default', "$tag/async-rollback", lines($out));
	return;
}

# Open a session with synchronous_commit = off and an UNCOMMITTED
# transaction that took IDs (one of them forcing a block advance), and
# leave it open.  Returns (session, backend pid).
sub open_uncommitted_session
{
	my ($tag) = @_;
	my $bg = $node->background_psql('postgres');
	my $pid = $bg->query_safe('SELECT pg_backend_pid()');
	$bg->query_safe('SET synchronous_commit = off');
	$bg->query_safe('BEGIN');
	$ids->add_ids('a', "$tag/open-xact(a)",
		lines($bg->query_safe(
			"INSERT INTO sink SELECT 'a', idalloc_one('a') FROM generate_series(1, 14) RETURNING id"
		)));
	take_ids($ids, $bg, 'b',       6, "$tag/open-xact(b)");
	take_ids($ids, $bg, 'default', 5, "$tag/open-xact");
	record_batches($ids, 'b', "$tag/open-xact-batch(b)",
		$bg->query_safe("SELECT start_id || '|' || end_id FROM idalloc_batch('b', 3)"),
		3);
	return ($bg, $pid);
}

sub session_gone
{
	my ($bg) = @_;
	# the server side is gone; psql may complain on its way out
	eval { $bg->quit; };
	return;
}

############################################################################
# (a) immediate shutdown
workload('a1');
my ($bg, $pid) = open_uncommitted_session('a1');
workload('a2');
my %persisted = persisted_until($node);
cmp_ok($persisted{$_}, '>', $ids->max($_),
	"(a) persisted_until of $_ is above every ID handed out")
  for @allocators;

$node->stop('immediate');
session_gone($bg);
$node->start;

check_first_after($node, $ids, '(a) immediate', \%persisted, @allocators);
workload('a3');
no_repeats($ids, '(a) no ID handed out twice across an immediate stop');

############################################################################
# (b) kill -9 of a backend that holds an uncommitted transaction with IDs
workload('b1');
($bg, $pid) = open_uncommitted_session('b1');
workload('b2');
%persisted = persisted_until($node);

crash_backend($node, $pid, '(b)');
session_gone($bg);

check_first_after($node, $ids, '(b) kill -9', \%persisted, @allocators);
workload('b3');
no_repeats($ids, '(b) no ID handed out twice across a backend kill -9');

############################################################################
# (c) clean restart (a gap is allowed here for now; no repeat ever)
workload('c1');
($bg, $pid) = open_uncommitted_session('c1');
$bg->query_safe('ROLLBACK');
$bg->quit;
workload('c2');
%persisted = persisted_until($node);

$node->restart;

check_first_after($node, $ids, '(c) clean restart', \%persisted, @allocators);
workload('c3');
no_repeats($ids, '(c) no ID handed out twice across a clean restart');

############################################################################
# (d) two crashes in a row with nothing allocated in between: the second
# restart must not fall back below IDs handed out before the first.
workload('d1');
%persisted = persisted_until($node);
$node->stop('immediate');
$node->start;
$node->stop('immediate');
$node->start;
check_first_after($node, $ids, '(d) double crash', \%persisted, @allocators);
workload('d2');
no_repeats($ids, '(d) no ID handed out twice across two crashes');

# sanity: the workload really crossed many blocks
for my $alloc (qw(a b default))
{
	cmp_ok($ids->distinct($alloc), '>', 100,
		"collected more than 100 distinct IDs of $alloc");
}

$node->stop;
done_testing();
