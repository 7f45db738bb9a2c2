# Copyright (c) idalloc authors
#
# G5 (a clean shutdown and restart loses nothing) and G1 (no repeat) around
# the state file pg_stat/idalloc.state (src/restart.c).
#
#   (a) cache = 1 allocators (default block, and block 5 stopped in the
#       middle of a block): after pg_ctl stop -m fast / -m smart and a
#       start, the view's next_id and the first ID are exactly the max
#       handed out before + 1; several restarts in a row, with and without
#       allocation in between, stay gapless; the log says "resumed"; the
#       file exists while the server is down and is gone once it is up.
#   (b) stop -m immediate: no file is written; the restart resumes exactly
#       at persisted_until shown just before the crash (above every ID).
#   (c) clean stop, start, crash (with and without allocation after the
#       restart): no repeat, the file was consumed at start; a stale file
#       from an earlier clean stop planted back after a crash is ignored
#       (pg_control does not say "shut down").
#   (d) a corrupt state file (junk, truncated): ignored with a LOG line,
#       resume at the persisted end, no repeat.
#   (e) a cached allocator (cache = 10) whose ranges are held by open
#       sessions at a fast stop: no repeat, and allocation resumes at the
#       first unused ID of the range taken last (given back at exit), above
#       every ID handed out and not above the global next before the stop.
use strict;
use warnings;

use File::Copy;
use FindBin;
use lib $FindBin::RealBin;
use IdallocTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = idalloc_node('clean', conf => "restart_after_crash = on\n");
$node->safe_psql(
	'postgres', q{
	SELECT idalloc_create('small', start => 100, block => 5);
	SELECT idalloc_create('cached', start => 5000, block => 25, cache => 10);
});

my $state_file = $node->data_dir . '/pg_stat/idalloc.state';
my @plain = qw(default small);    # cache = 1

# every ID ever handed out
my $ids = IdallocTest::IdSet->new;

# name => [next_id, persisted_until] as the view shows it now
sub view_state
{
	return allocator_state($node, qw(next_id persisted_until));
}

sub first_id
{
	my ($alloc, $where) = @_;
	my $id = $node->safe_psql('postgres', "SELECT idalloc_one('$alloc')");
	$ids->add_ids($alloc, $where, $id);
	return $id;
}

# start the node; returns the log text of this start once it accepts
# connections
sub start_node
{
	my $offset = -s $node->logfile;
	$node->start;
	return slurp_file($node->logfile, $offset);
}

# After a clean restart: view next_id and first ID of each cache = 1
# allocator are exactly max + 1.
sub check_gapless
{
	my ($tag) = @_;
	my %v = view_state();
	for my $alloc (@plain)
	{
		my $max = $ids->max($alloc);
		is($v{$alloc}[0], $max + 1,
			"$tag: next_id of $alloc in the view is max before + 1 ($max + 1)");
		is(first_id($alloc, "$tag/first"), $max + 1,
			"$tag: first ID of $alloc is max before + 1 (no gap)");
	}
	return;
}

# After a crash: view next_id and first ID of each allocator are exactly
# the persisted_until shown before the crash, and above the max before.
sub check_resume_at_persisted
{
	my ($tag, $before, @allocs) = @_;
	my %v = view_state();
	for my $alloc (@allocs)
	{
		my $max = $ids->max($alloc);
		my $until = $before->{$alloc}[1];
		is($v{$alloc}[0], $until,
			"$tag: next_id of $alloc in the view is persisted_until before ($until)");
		my $first = first_id($alloc, "$tag/first");
		cmp_ok($first, '>', $max, "$tag: first ID of $alloc is above the max before ($max)");
		is($first, $until,
			"$tag: first ID of $alloc is exactly persisted_until before ($until)");
	}
	return;
}

############################################################################
# (a) clean stops: gapless
take_ids($ids, $node, 'default', 13, 'a0');
# 100..112: block 5 -> persisted end 115
take_ids($ids, $node, 'small', 13, 'a0');
# 113..115: crosses into the next block
take_batch($ids, $node, 'small', 3, 'a0');
take_ids($ids, $node, 'small', 2, 'a0');    # 116, 117
my %v = view_state();
cmp_ok($v{small}[0], '<', $v{small}[1],
	'(a) precondition: small stops in the middle of a block');
cmp_ok($v{default}[0], '<', $v{default}[1],
	'(a) precondition: default stops in the middle of a block');

$node->stop('fast');
ok(-e $state_file, '(a) fast stop wrote pg_stat/idalloc.state');
my $log = start_node();
like($log, qr/idalloc: resumed 3 allocators where the clean shutdown left them/,
	'(a) the log says the 3 live allocators were resumed');
ok(!-e $state_file, '(a) the state file is gone once the server is up');
check_gapless('(a) fast');

my @modes = qw(smart fast smart fast);
for my $i (0 .. $#modes)
{
	my $mode = $modes[$i];
	take_ids($ids, $node, 'default', 3 + $i, "a$i/$mode");
	take_ids($ids, $node, 'small', 4 + $i, "a$i/$mode");    # crosses blocks
	take_batch($ids, $node, 'small', 2 + $i, "a$i/$mode");
	$node->stop($mode);
	ok(-e $state_file, "(a) restart $i: $mode stop wrote the state file");
	$log = start_node();
	like($log, qr/idalloc: resumed 3 allocators/,
		"(a) restart $i: the log says resumed after a $mode stop");
	check_gapless("(a) restart $i ($mode)");
}

# two clean restarts with nothing allocated in between: the restored (not
# yet used) state is saved again as it was
my %before = view_state();
$node->restart;
$node->restart;
is_deeply({ view_state() }, \%before,
	'(a) two restarts without allocation: the view shows the same next_id and persisted_until');
check_gapless('(a) double restart');
no_repeats($ids, '(a): no ID handed out twice');

############################################################################
# (b) immediate stop: no file, resume at the persisted end
take_ids($ids, $node, 'default', 7, 'b0');
take_ids($ids, $node, 'small',   8, 'b0');
take_ids($ids, $node, 'cached',  4, 'b0');
%before = view_state();
cmp_ok($before{small}[0], '<', $before{small}[1],
	'(b) precondition: small crashes in the middle of a block');
$node->stop('immediate');
ok(!-e $state_file, '(b) an immediate stop writes no state file');
$log = start_node();
unlike($log, qr/idalloc: resumed/, '(b) nothing resumed after an immediate stop');
ok(!-e $state_file, '(b) no state file while the server is up');
check_resume_at_persisted('(b) immediate', \%before, qw(default small cached));
no_repeats($ids, '(b): no ID handed out twice');

############################################################################
# (c) clean stop, then a crash after the restart
# (c1) with allocation after the restart
take_ids($ids, $node, 'default', 5, 'c1');
take_ids($ids, $node, 'small',   6, 'c1');
$node->stop('fast');
ok(-e $state_file, '(c1) fast stop wrote the state file');
start_node();
ok(!-e $state_file, '(c1) the state file was consumed at start');
take_ids($ids, $node, 'default', 4, 'c1/after');
take_ids($ids, $node, 'small',   9, 'c1/after');
%before = view_state();
$node->stop('immediate');
ok(!-e $state_file, '(c1) the crash wrote no state file');
$log = start_node();
unlike($log, qr/idalloc: resumed/, '(c1) nothing resumed after the crash');
check_resume_at_persisted('(c1) clean stop, allocation, crash',
	\%before, @plain);

# (c2) without allocation after the restart
take_ids($ids, $node, 'small', 3, 'c2');
$node->stop('fast');
start_node();
%before = view_state();
$node->stop('immediate');
$log = start_node();
unlike($log, qr/idalloc: resumed/, '(c2) nothing resumed after the crash');
check_resume_at_persisted('(c2) clean stop, crash without allocation',
	\%before, @plain);

# (c3) a state file from an earlier clean stop, planted back after a crash,
# holds next IDs below IDs handed out since: it must be ignored
take_ids($ids, $node, 'small', 2, 'c3');
$node->stop('fast');
my $stale = $node->basedir . '/idalloc.state.stale';
copy($state_file, $stale) or die "copy: $!";
start_node();
take_ids($ids, $node, 'default', 6, 'c3/after');
# several blocks past the stale file
take_ids($ids, $node, 'small', 12, 'c3/after');
%before = view_state();
$node->stop('immediate');
copy($stale, $state_file) or die "copy: $!";
$log = start_node();
like($log,
	qr/ignoring idalloc state file: the server was not shut down cleanly/,
	'(c3) a state file found after a crash is ignored');
unlike($log, qr/idalloc: resumed/, '(c3) nothing resumed from the stale file');
ok(!-e $state_file, '(c3) the stale file was deleted');
check_resume_at_persisted('(c3) stale file after a crash', \%before, @plain);
no_repeats($ids, '(c): no ID handed out twice');

############################################################################
# (d) corrupt state file: ignored, resume at the persisted end
# (d1) junk
take_ids($ids, $node, 'default', 3, 'd1');
take_ids($ids, $node, 'small',   3, 'd1');
%before = view_state();
$node->stop('fast');
ok(-e $state_file, '(d1) fast stop wrote the state file');
{
	open my $fh, '>', $state_file or die "open: $!";
	binmode $fh;
	print $fh "this is not an idalloc state file\x00\xff\x17";
	close $fh;
}
$log = start_node();
like($log, qr/ignoring idalloc state file .*: it is corrupt/,
	'(d1) a junk state file is reported as corrupt');
unlike($log, qr/idalloc: resumed/, '(d1) nothing resumed from junk');
ok(!-e $state_file, '(d1) the junk file was deleted');
check_resume_at_persisted('(d1) junk file', \%before, @plain);

# (d2) a real file cut short (no trailer)
take_ids($ids, $node, 'default', 3, 'd2');
take_ids($ids, $node, 'small',   3, 'd2');
%before = view_state();
$node->stop('fast');
my $size = -s $state_file;
ok($size > 4, '(d2) fast stop wrote a non-empty state file');
truncate($state_file, $size - 4) or die "truncate: $!";
$log = start_node();
like($log, qr/ignoring idalloc state file .*: it is corrupt/,
	'(d2) a truncated state file is reported as corrupt');
unlike($log, qr/idalloc: resumed/, '(d2) nothing resumed from a truncated file');
check_resume_at_persisted('(d2) truncated file', \%before, @plain);

# (d2b) a real file whose CRC-32C (its last 4 bytes) is wrong
take_ids($ids, $node, 'small', 2, 'd2b');
%before = view_state();
$node->stop('fast');
{
	my $raw = slurp_file($state_file);
	substr($raw, -4) = pack('L', 0xdeadbeef);
	open my $fh, '>', $state_file or die "open: $!";
	binmode $fh;
	print $fh $raw;
	close $fh;
}
$log = start_node();
like($log, qr/ignoring idalloc state file .*: it is corrupt/,
	'(d2b) a state file with a bad CRC is reported as corrupt');
unlike($log, qr/idalloc: resumed/, '(d2b) nothing resumed from it');
check_resume_at_persisted('(d2b) bad CRC', \%before, @plain);

# (d3) a well-formed file whose entry for small is ahead of the row (end
# beyond the persisted end) and whose next is far below what was handed
# out, with a valid CRC (a forgery, not a corruption): the first backend
# that attaches it must not trust it, and resume at the row's persisted
# end.  Layout (restart.c, version 2): header {uint32 magic, uint32
# version, int32 count}, count x {Oid dboid, Oid extoid, int64 id, next,
# end}, then the CRC-32C of everything before it (uint32).
take_ids($ids, $node, 'small', 4, 'd3');
my $small_id = $node->safe_psql('postgres',
	q{SELECT id FROM idalloc_registry WHERE name = 'small'});
my $dboid = $node->safe_psql('postgres',
	q{SELECT oid FROM pg_database WHERE datname = current_database()});
%before = view_state();
$node->stop('fast');
{
	my $raw = slurp_file($state_file);
	my ($magic, $version, $count) = unpack('L L l', $raw);
	is(length($raw), 12 + 32 * $count + 4,
		'(d3) the state file has the expected layout');
	my $patched = 0;
	for my $i (0 .. $count - 1)
	{
		my $off = 12 + 32 * $i;
		my ($db, $ext, $id, $next, $end) = unpack('L L q q q', substr($raw, $off, 32));
		next unless $db == $dboid && $id == $small_id;
		is($next, $before{small}[0], '(d3) the file holds the exact next of small');
		is($end, $before{small}[1], '(d3) the file holds the persisted end of small');
		substr($raw, $off, 32) = pack('L L q q q', $db, $ext, $id, 100, $end + 1000);
		$patched++;
	}
	is($patched, 1, '(d3) patched the entry of small');
	is(unpack('L', substr($raw, -4)), crc32c(substr(slurp_file($state_file), 0, -4)),
		'(d3) the CRC-32C of the file as written is what the test computes');
	substr($raw, -4) = pack('L', crc32c(substr($raw, 0, -4)));
	open my $fh, '>', $state_file or die "open: $!";
	binmode $fh;
	print $fh $raw;
	close $fh;
}
$log = start_node();
# 2: cached is not attached since the corrupt files of (d1), (d2)
like($log, qr/idalloc: resumed 2 allocators/, '(d3) the forged file is read');
my $max = $ids->max('small');
my $f = first_id('small', 'd3/first');
cmp_ok($f, '>', $max,
	'(d3) first ID of small is above every ID before, despite the forged next');
is($f, $before{small}[1],
	'(d3) first ID of small is the persisted end of its row');
like(slurp_file($node->logfile),
	qr/saved state of allocator $small_id is ahead of its row; resuming at $before{small}[1]/,
	'(d3) the log says the saved state was ahead of the row');
check_gapless('(d3) then');
no_repeats($ids, '(d): no ID handed out twice');

############################################################################
# (e) cached allocator, ranges held by open sessions at a fast stop
my $sa = $node->background_psql('postgres');
my $sb = $node->background_psql('postgres');
$ids->add_ids('cached', 'e/A', lines($sa->query_safe(one_sql('cached', 3))));
$ids->add_ids('cached', 'e/B', lines($sb->query_safe(one_sql('cached', 2))));
my %ranges = map { my ($p, $n, $e) = split /\|/; ($p => [ $n, $e ]) }
  lines($node->safe_psql('postgres',
	q{SELECT pid, next_id, end_id FROM idalloc_caches WHERE allocator = 'cached'}));
my $pid_a = $sa->query_safe('SELECT pg_backend_pid()');
my $pid_b = $sb->query_safe('SELECT pg_backend_pid()');
is(scalar(keys %ranges), 2, '(e) both sessions hold a cached range');
ok(exists $ranges{$pid_a} && exists $ranges{$pid_b}, '(e) idalloc_caches shows both pids');
%before = view_state();
is($before{cached}[0], $ranges{$pid_b}[1],
	'(e) precondition: B took its range last (the global next is its end)');

$node->stop('fast');
eval { $sa->quit; };
eval { $sb->quit; };
ok(-e $state_file, '(e) fast stop wrote the state file');
$log = start_node();
like($log, qr/idalloc: resumed 3 allocators/, '(e) the log says resumed');
%v = view_state();
my $b_unused = $ranges{$pid_b}[0];
is($v{cached}[0], $b_unused,
	"(e) next_id resumes at B's first unused ID ($b_unused), given back at its exit");
cmp_ok($v{cached}[0], '<=', $before{cached}[0],
	'(e) and not above the global next before the stop');
is($node->safe_psql('postgres', 'SELECT count(*) FROM idalloc_caches'),
	'0', '(e) no cached range survives the restart');
my $max_cached = $ids->max('cached');
my $first = first_id('cached', 'e/first');
cmp_ok($first, '>', $max_cached,
	'(e) first cached ID after the restart is above every ID before');
is($first, $b_unused, '(e) first cached ID is the resumed next_id');
# and some more, from sessions holding ranges again
take_ids($ids, $node, 'cached', 25, 'e/after');
no_repeats($ids, '(e): no ID handed out twice');

# sanity: the test really crossed blocks and restarts
cmp_ok($ids->distinct('small'), '>', 100,
	'collected more than 100 distinct IDs of small');

$node->stop;
done_testing();
