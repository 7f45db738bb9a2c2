# Copyright (c) idalloc authors
#
# The clean-shutdown state file pg_stat/idalloc.state decides where
# allocation resumes, so it carries a CRC-32C over the whole file (issue 7,
# defect 4; DESIGN-NOTES: "Files in the data directory that decide
# uniqueness need a CRC-32C").
#
#   (a) an unmodified file is used: after a clean stop and start the next
#       ID of a cache = 1 allocator is exactly the one after the last ID
#       before (no gap), for several restarts;
#   (b) a file whose saved next of an allocator was lowered in place (the
#       8-byte little-endian value equal to its next ID replaced by a
#       smaller one: same length, same structure) is ignored with a LOG
#       line about the state file, and every allocator resumes at its
#       persisted end: no ID is handed out twice;
#   (c) the file written at the next clean stop is good again (gapless).
#
# Nothing here relies on the file's layout beyond "the saved next IDs are
# in it as little-endian int64".
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdallocTest qw(idalloc_node lines);

my $node = idalloc_node('crc');
my $state_file = $node->data_dir . '/pg_stat/idalloc.state';

# 'big': a start no other number in the file can equal, and a block so
# large that next stays far below the persisted end
my $start = 7_000_000_000_123;
$node->safe_psql('postgres',
	"SELECT idalloc_create('big', start => $start, block => 100000000)");

my $ids = IdallocTest::IdSet->new;
my %last;    # the last ID handed out, per allocator

sub take
{
	my ($alloc, $n, $where) = @_;
	my @got = lines($node->safe_psql('postgres',
		"SELECT idalloc_one('$alloc') FROM generate_series(1, $n)"));
	die "expected $n IDs of $alloc ($where)" unless @got == $n;
	$ids->add_ids($alloc, $where, @got);
	$last{$alloc} = $got[-1];
	return @got;
}

sub view_of
{
	my ($alloc) = @_;
	return split /\|/, $node->safe_psql('postgres',
		"SELECT next_id, persisted_until FROM idalloc_allocators WHERE name = '$alloc'");
}

sub start_node
{
	my $offset = -s $node->logfile;
	$node->start;
	return slurp_file($node->logfile, $offset);
}

sub rewrite_file
{
	my ($raw) = @_;
	open my $fh, '>', $state_file or die "open $state_file: $!";
	binmode $fh;
	print $fh $raw;
	close $fh or die "close: $!";
	return;
}

# Offsets of the 8-byte little-endian $value in $raw (any alignment).
sub offsets_of
{
	my ($raw, $value) = @_;
	my $needle = pack('q<', $value);
	my @at;
	my $pos = -1;
	while (($pos = index($raw, $needle, $pos + 1)) >= 0)
	{
		push @at, $pos;
	}
	return @at;
}

# After a clean restart: the first ID of each allocator is max before + 1.
sub check_gapless
{
	my ($tag, @allocs) = @_;
	for my $alloc (@allocs)
	{
		my $last = $last{$alloc};
		my ($first) = take($alloc, 1, "$tag/first");
		is($first, $last + 1, "$tag: the first ID of $alloc is the one after the last before ($last + 1)");
	}
	return;
}

############################################################################
# (a) a good file is used
take('big', 100, 'a');
take('default', 10, 'a');
for my $i (1 .. 2)
{
	$node->stop('fast');
	ok(-e $state_file, "(a) restart $i: the fast stop wrote the state file");
	start_node();
	check_gapless("(a) restart $i", qw(big default));
	take('big', 5, "a$i");
	take('default', 3, "a$i");
}

############################################################################
# (b) a lowered next: the CRC rejects the file
take('big', 17, 'b');
my ($next, $until) = view_of('big');
my ($dnext, $duntil) = view_of('default');
is($next, $last{big} + 1, '(b) precondition: next of big is the one after its last ID');
cmp_ok($until - $next, '>', 1000000, '(b) precondition: next of big is far below its persisted end');
$node->stop('fast');
ok(-e $state_file, '(b) the fast stop wrote the state file');

my $raw = slurp_file($state_file);
my $size = length($raw);
my @at = offsets_of($raw, $next);
is(scalar(@at), 1, "(b) the file holds the next ID of big ($next) exactly once")
  or diag "found at offsets: @at";
if (@at)
{
	# lower it to big's start: on a file that is trusted, the IDs from the
	# start on are handed out again
	substr($raw, $at[0], 8) = pack('q<', $start);
	rewrite_file($raw);
}
is(-s $state_file, $size, '(b) the changed file has the same length');

my $log = start_node();
like($log, qr/idalloc.*state file/i, '(b) the log has a line about the idalloc state file')
  or diag $log;
unlike($log, qr/idalloc: resumed [1-9]/,
	'(b) nothing is resumed from the changed file');
ok(!-e $state_file, '(b) the file was consumed');

my %max = map { $_ => $ids->max($_) } qw(big default);
my ($first) = take('big', 1, 'b/first');
cmp_ok($first, '>', $max{big}, "(b) the first ID of big is above every ID before ($max{big})");
is($first, $until, "(b) big resumes at its persisted end ($until)");
my ($dfirst) = take('default', 1, 'b/first');
cmp_ok($dfirst, '>', $max{default}, "(b) the first ID of default is above every ID before ($max{default})");
is($dfirst, $duntil, "(b) default resumes at its persisted end ($duntil)");
take('big', 50, 'b/after');
take('default', 5, 'b/after');
is(join("\n", $ids->repeats), '', '(b) no ID handed out twice');

############################################################################
# (c) the next clean stop writes a good file again
$node->stop('fast');
ok(-e $state_file, '(c) the fast stop wrote the state file');
start_node();
check_gapless('(c) after the rejected file', qw(big default));
is(join("\n", $ids->repeats), '', '(c) no ID handed out twice');

$node->stop;
done_testing();
