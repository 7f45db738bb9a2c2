# Copyright (c) idalloc authors
#
# Per-backend cache slots (src/cache.c) are released when the backend
# exits, whatever the way out, and a crash loses them without a repeat.
#
# A session holds cached ranges of two allocators (x: cache 10, y: cache
# 7), seen by another session in idalloc_caches with its pid; then
#   (a) it exits normally: its rows vanish and, since nobody took IDs from
#       the global counter meanwhile, the global next_id of each allocator
#       goes back to the first unused ID of its range (no gap); when
#       another session took a range after it, its rest is a gap instead
#       (the global next does not move back); idalloc_sync does the same
#       give-back without an exit;
#   (b) pg_terminate_backend(pid): rows vanish, the rest is given back, the
#       server keeps running (no crash-restart);
#   (c) a FATAL exit (idle_in_transaction_session_timeout, in an open
#       transaction that took cached IDs): rows vanish, the rest is given
#       back above the IDs of the aborted transaction;
#   (d) kill -9 of a backend holding caches (another one holds a range
#       too): crash-restart, idalloc_caches is empty, allocation resumes at
#       the persisted end shown before the crash;
# and no ID is ever handed out twice (every ID is collected).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use IdallocTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = idalloc_node('bexit', conf => "restart_after_crash = on\n");
$node->safe_psql(
	'postgres', q{
	SELECT idalloc_create('x', start => 1, block => 100, cache => 10);
	SELECT idalloc_create('y', start => 1000, block => 50, cache => 7);
});

# every ID ever handed out
my $ids = IdallocTest::IdSet->new;

# $n IDs of $alloc in a new short session ...
sub take
{
	my ($alloc, $n, $where) = @_;
	return take_ids($ids, $node, $alloc, $n, $where);
}

# ... or in session $s (background psql)
sub take_in
{
	my ($s, $alloc, $n, $where) = @_;
	return take_ids($ids, $s, $alloc, $n, $where);
}

sub open_session
{
	my $s = $node->background_psql('postgres');
	my $pid = $s->query_safe('SELECT pg_backend_pid()');
	return ($s, $pid);
}

# allocator => [next_id, end_id] of backend $pid, as another session sees it
sub caches_of
{
	my ($pid) = @_;
	my %c;
	for my $line (lines($node->safe_psql('postgres',
		"SELECT allocator, next_id, end_id FROM idalloc_caches WHERE pid = $pid")))
	{
		my ($a, $n, $e) = split /\|/, $line;
		$c{$a} = [ $n, $e ];
	}
	return %c;
}

# allocator => [next_id, persisted_until, cached_ranges]
sub global
{
	return allocator_state($node, qw(next_id persisted_until cached_ranges));
}

# the session's cached ranges of x and y are visible to another session,
# and the global next of each is the end of that range
sub check_held
{
	my ($tag, $pid) = @_;
	my %c = caches_of($pid);
	ok(exists $c{x} && exists $c{y},
		"$tag: idalloc_caches shows pid $pid holding x and y");
	is($c{x}[0], $ids->max('x') + 1, "$tag: its x range continues right after the last x ID");
	my %g = global();
	is($g{x}[0], $c{x}[1], "$tag: global next of x is the end of its range");
	is($g{y}[0], $c{y}[1], "$tag: global next of y is the end of its range");
	return %c;
}

sub check_released
{
	my ($tag, $pid, $held) = @_;
	my %c = caches_of($pid);
	is(scalar(keys %c), 0, "$tag: rows of pid $pid vanished from idalloc_caches");
	my %g = global();
	is($g{x}[0], $held->{x}[0],
		"$tag: global next of x went back to the first unused cached ID ($held->{x}[0])");
	is($g{y}[0], $held->{y}[0],
		"$tag: global next of y went back to the first unused cached ID ($held->{y}[0])");
	is($g{x}[2], 0, "$tag: x has no cached range left");
	is($g{y}[2], 0, "$tag: y has no cached range left");
	# no gap: a new session continues exactly there
	my ($fx) = take('x', 1, "$tag/next");
	my ($fy) = take('y', 1, "$tag/next");
	is($fx, $held->{x}[0], "$tag: next x ID is the given-back one (no gap)");
	is($fy, $held->{y}[0], "$tag: next y ID is the given-back one (no gap)");
	return;
}

############################################################################
# (a) normal exit
my ($s, $pid) = open_session();
take_in($s, 'x', 3, 'a');
take_in($s, 'y', 2, 'a');
my %held = check_held('(a)', $pid);
is_deeply([ $held{x}[0], $held{x}[1] ], [ 4, 11 ],
	'(a) x range is [1, 11), 3 IDs used');
is_deeply([ $held{y}[0], $held{y}[1] ], [ 1002, 1007 ],
	'(a) y range is [1000, 1007), 2 IDs used');
$s->quit;
ok(wait_gone($pid), '(a) backend exited');
check_released('(a) normal exit', $pid, \%held);

# (a2) someone took a range of x after us: our rest is a gap
my ($s1, $pid1) = open_session();
my ($s2, $pid2) = open_session();
take_in($s1, 'x', 2, 'a2/s1');
take_in($s2, 'x', 1, 'a2/s2');
my %c1 = caches_of($pid1);
my %c2 = caches_of($pid2);
is($c2{x}[0] - 1, $c1{x}[1], '(a2) s2 took its range of x right after s1');
$s1->quit;
ok(wait_gone($pid1), '(a2) s1 exited');
is(scalar(keys %{ { caches_of($pid1) } }), 0, '(a2) rows of s1 vanished');
my %g = global();
is($g{x}[0], $c2{x}[1],
	'(a2) global next of x stays at the end of s2 range (s1 rest is a gap)');
is($g{x}[2], 1, '(a2) one cached range of x left (s2)');
# a new session takes a whole range from the global counter (it must not
# get s1's rest back: that would overlap s2's range), s2 continues
my @s3 = take('x', 10, 'a2/s3');
is($s3[0], $c2{x}[1], '(a2) a new session continues after the range of s2');
take_in($s2, 'x', 5, 'a2/s2-more');
$s2->quit;
ok(wait_gone($pid2), '(a2) s2 exited');
%g = global();
is($g{x}[0], $c2{x}[1] + 10,
	'(a2) s2 exit after someone took IDs: its rest is a gap, the global next stays');

# (a3) idalloc_sync gives the rest back without an exit
($s, $pid) = open_session();
take_in($s, 'x', 4, 'a3');
my %c = caches_of($pid);
$s->query_safe(q{SELECT idalloc_sync('x')});
ok(!exists { caches_of($pid) }->{x}, '(a3) after idalloc_sync the x row is gone');
%g = global();
is($g{x}[0], $c{x}[0], '(a3) idalloc_sync gave the rest of x back');
my ($after_sync) = take_in($s, 'x', 1, 'a3/after');
is($after_sync, $c{x}[0], '(a3) the session continues at the given-back ID');
$s->quit;
ok(wait_gone($pid), '(a3) backend exited');
no_repeats($ids, '(a): no ID handed out twice');

############################################################################
# (b) pg_terminate_backend
my $start_time = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');
my $log_offset = -s $node->logfile;
($s, $pid) = open_session();
take_in($s, 'x', 3, 'b');
take_in($s, 'y', 4, 'b');
%held = check_held('(b)', $pid);
is($node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)"),
	't', '(b) pg_terminate_backend');
ok(wait_gone($pid), '(b) backend exited');
eval { $s->quit; };
check_released('(b) pg_terminate_backend', $pid, \%held);
is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'),
	$start_time, '(b) the server kept running (same postmaster start time)');
unlike(slurp_file($node->logfile, $log_offset),
	qr/terminating any other active server processes|reinitializing/,
	'(b) no crash-restart');
no_repeats($ids, '(b): no ID handed out twice');

############################################################################
# (c) FATAL exit: idle_in_transaction_session_timeout
$log_offset = -s $node->logfile;
($s, $pid) = open_session();
take_in($s, 'x', 2, 'c');
take_in($s, 'y', 1, 'c');
check_held('(c)', $pid);
# more cached IDs in a transaction left open: the backend dies with FATAL.
# The timeout is set last, so that it cannot strike between the statements.
my @open_xact = lines($s->query_safe(
	q{BEGIN;
	  SELECT 'x|' || idalloc_one('x') FROM generate_series(1, 3)
	  UNION ALL
	  SELECT 'y|' || idalloc_one('y') FROM generate_series(1, 2);
	  SET idle_in_transaction_session_timeout = '100ms';}));
is(scalar(@open_xact), 5, '(c) 5 IDs taken in the open transaction');
for (@open_xact)
{
	my ($a, $id) = split /\|/;
	$ids->add_ids($a, 'c/open-xact', $id);
}
ok(wait_gone($pid), '(c) backend exited');
eval { $s->quit; };
like(slurp_file($node->logfile, $log_offset),
	qr/FATAL:  terminating connection due to idle-in-transaction timeout/,
	'(c) the backend exited with FATAL');
%held = (x => [ $ids->max('x') + 1 ], y => [ $ids->max('y') + 1 ]);
check_released('(c) FATAL exit', $pid, \%held);
is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'),
	$start_time, '(c) the server kept running');
no_repeats($ids, '(c): no ID handed out twice');

############################################################################
# (d) kill -9 of a backend holding caches
($s1, $pid1) = open_session();
($s2, $pid2) = open_session();
take_in($s1, 'x', 3, 'd/s1');
take_in($s1, 'y', 3, 'd/s1');
take_in($s2, 'x', 5, 'd/s2');
take_in($s2, 'y', 1, 'd/s2');
ok(scalar(keys %{ { caches_of($pid1) } }) == 2
	  && scalar(keys %{ { caches_of($pid2) } }) == 2,
	'(d) both sessions hold ranges of x and y');
my %before = global();
crash_backend($node, $pid1, '(d)');
eval { $s1->quit; };
eval { $s2->quit; };
ok(wait_gone($pid2), '(d) the other session holding ranges was ended by the crash-restart');
is($node->safe_psql('postgres', 'SELECT count(*) FROM idalloc_caches'),
	'0', '(d) idalloc_caches is empty after the crash-restart');
%g = global();
for my $a (qw(x y))
{
	is($g{$a}[0], $before{$a}[1],
		"(d) next_id of $a is persisted_until shown before the crash ($before{$a}[1])");
	my $max = $ids->max($a);
	my ($first) = take($a, 1, 'd/first');
	cmp_ok($first, '>', $max, "(d) first $a ID after the crash is above every ID before ($max)");
	is($first, $before{$a}[1], "(d) first $a ID is exactly persisted_until before");
}
# more allocation: sessions with caches, crossing blocks
for my $i (1 .. 5)
{
	take('x', 37, "d/after$i");
	take('y', 23, "d/after$i");
}
no_repeats($ids, '(d): no ID handed out twice');

# the postmaster still saves the state at a clean stop after that
# crash-restart: the next start is gapless
$node->stop('fast');
$log_offset = -s $node->logfile;
$node->start;
like(slurp_file($node->logfile, $log_offset),
	qr/idalloc: resumed 2 allocators where the clean shutdown left them/,
	'(d) a clean restart after the crash-restart resumes x and y');
for my $a (qw(x y))
{
	my $max = $ids->max($a);
	my ($first) = take($a, 1, 'd/clean');
	is($first, $max + 1, "(d) after a clean restart, first $a ID is max + 1 (no gap)");
}
no_repeats($ids, '(d) clean restart: no ID handed out twice');

cmp_ok($ids->distinct('x'), '>', 150, 'collected many distinct IDs of x');

$node->stop;
done_testing();
