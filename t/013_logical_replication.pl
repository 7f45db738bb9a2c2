# Copyright (c) idalloc authors
#
# A logical-replication subscriber of a database that uses idalloc (issue
# 7, defect 3, second half; SPEC G1 [1.1] and the Errors table): rows of
# idalloc_registry arriving from a subscription are merged as a restored
# row is.  They can raise an allocator or add one, never lower or remove
# one, and never break the subscription.
#
# Two nodes, each with idalloc installed on its own, so that their
# registry ids collide:
#
#   publisher  default (advanced to 500000)  orders (start 1000)
#              pubonly  subhigh  -- then later, later2 while streaming
#   subscriber default (behind)  subonly (the registry id of the
#              publisher's orders)  orders (another id)  subhigh (advanced
#              to 9e12)  subextra (the registry id the publisher's `later`
#              gets)
#
# CREATE PUBLICATION p FOR ALL TABLES / CREATE SUBSCRIPTION s: the initial
# sync must reach state 'r' (on 1.0 the copy of idalloc_registry fails
# with a duplicate key and retries forever: the wait is bounded so that
# the file fails instead of hanging).  Then on the subscriber every
# allocator of the publisher exists and hands out IDs above every ID the
# publisher handed out before the copy (at or above its persisted_end),
# subonly is untouched, subhigh was not lowered.  Streaming: a create on
# the publisher arrives, a drop on the publisher leaves the subscriber's
# allocator in place and the subscription working; a user's direct
# UPDATE / DELETE on the subscriber still fails with 42501.  (That a
# subscriber continues above IDs the publisher handed out by later block
# advances, SPEC G1 [1.1], is t/019_logical_carry.pl's.)
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use FindBin;
use lib $FindBin::RealBin;
use IdallocTest qw(idalloc_node lines sqlstate_of poll_bounded);

my $pub = idalloc_node('pub', init => { allows_streaming => 'logical' });
my $sub = idalloc_node('sub');

sub registry_ids
{
	my ($node) = @_;
	return map { split /\|/ } lines($node->safe_psql('postgres',
		'SELECT name, id FROM public.idalloc_registry'));
}

sub row_of
{
	my ($node, $name) = @_;
	return $node->safe_psql('postgres',
		qq{SELECT id, start, block, persisted_end, cache, kind, source
		     FROM public.idalloc_registry WHERE name = '$name'});
}

my $pub_ids = IdallocTest::IdSet->new;
my $sub_ids = IdallocTest::IdSet->new;

# $n IDs of $alloc in a new session, recorded; on an error (an allocator
# missing on the subscriber) a failed assertion and no IDs
sub take
{
	my ($node, $set, $alloc, $n, $where) = @_;
	my ($ret, $out, $err) = $node->psql('postgres',
		"SELECT idalloc_one('$alloc') FROM generate_series(1, $n)");
	my @ids = lines($out);
	if ($ret != 0 || @ids != $n)
	{
		fail("$where: $n IDs of $alloc on " . $node->name);
		diag $err;
		return ();
	}
	$set->add_ids($alloc, $where, @ids);
	return @ids;
}

############################################################################
# publisher: default 1, orders 2, pubonly 3, subhigh 4 (registry ids)
$pub->safe_psql(
	'postgres', q{
	SELECT idalloc_advance('default', 500000);
	SELECT idalloc_create('orders', start => 1000);
	SELECT idalloc_create('pubonly', block => 50);
	SELECT idalloc_create('subhigh');
});
take($pub, $pub_ids, 'default', 30, 'pub');
take($pub, $pub_ids, 'orders',  20, 'pub');
take($pub, $pub_ids, 'pubonly', 120, 'pub');    # several blocks
take($pub, $pub_ids, 'subhigh', 5, 'pub');
$pub_ids->add_range('default', 'pub batch',
	split /\|/, $pub->safe_psql('postgres', 'SELECT start_id, end_id FROM idalloc_batch(1000)'));

# subscriber: default 1, subonly 2, orders 3, subhigh 4, subextra 5
$sub->safe_psql(
	'postgres', q{
	SELECT idalloc_create('subonly', start => 7, block => 3, cache => 2);
	SELECT idalloc_create('orders', start => 1000, block => 10);
	SELECT idalloc_create('subhigh');
	SELECT idalloc_advance('subhigh', 9000000000000);
	SELECT idalloc_create('subextra');
});
take($sub, $sub_ids, 'default', 10, 'sub');
take($sub, $sub_ids, 'subonly', 10, 'sub');
take($sub, $sub_ids, 'orders',  5,  'sub');
take($sub, $sub_ids, 'subhigh', 5,  'sub');

my %pid = registry_ids($pub);
my %sid = registry_ids($sub);
is($sid{subonly}, $pid{orders},
	'precondition: the subscriber\'s subonly has the registry id of the publisher\'s orders');
isnt($sid{orders}, $pid{orders},
	'precondition: orders has different registry ids on the two nodes');
is($sid{subhigh}, $pid{subhigh}, 'precondition: subhigh has the same registry id on both');

# what the copy will see on the publisher
my %pub_end = map { split /\|/ } lines($pub->safe_psql('postgres',
	'SELECT name, persisted_end FROM public.idalloc_registry'));
for my $alloc (qw(default orders pubonly subhigh))
{
	cmp_ok($pub_end{$alloc}, '>', $pub_ids->max($alloc),
		"precondition: the publisher's persisted_end of $alloc is above its IDs");
}
my $subonly_row = row_of($sub, 'subonly');
my $sub_log_offset = -s $sub->logfile;

############################################################################
# the subscription
$pub->safe_psql('postgres', 'CREATE PUBLICATION p FOR ALL TABLES');
my $pub_connstr = $pub->connstr . ' dbname=postgres';
$sub->safe_psql('postgres',
	"CREATE SUBSCRIPTION s CONNECTION '$pub_connstr' PUBLICATION p");

my $synced = poll_bounded(
	$sub,
	q{SELECT count(*) > 0 AND count(*) FILTER (WHERE srsubstate <> 'r') = 0
	    FROM pg_subscription_rel},
	60);
ok($synced, 'the initial sync of the subscription reaches state r (within 60 s)')
  or diag $sub->safe_psql('postgres',
	'SELECT srrelid::regclass, srsubstate FROM pg_subscription_rel');

my $sub_log = slurp_file($sub->logfile, $sub_log_offset);
unlike($sub_log, qr/duplicate key value/,
	'the subscriber log has no "duplicate key value" error');
unlike($sub_log, qr/ERROR:.*idalloc/,
	'the subscriber log has no error from idalloc');

# how long to wait for streamed changes: short if the sync never finished
my $wait = $synced ? 60 : 5;

is( $sub->safe_psql('postgres',
		q{SELECT string_agg(name, ',' ORDER BY name) FROM public.idalloc_registry
		   WHERE name IN ('default', 'orders', 'pubonly', 'subhigh')}),
	'default,orders,pubonly,subhigh',
	'every allocator of the publisher exists on the subscriber');
is($sub->safe_psql('postgres',
		q{SELECT count(*) FROM public.idalloc_registry GROUP BY name HAVING count(*) > 1}),
	'', 'no allocator name twice on the subscriber');

for my $alloc (qw(default orders pubonly))
{
	my ($first) = take($sub, $sub_ids, $alloc, 3, 'sub after sync');
	$first //= -1;
	cmp_ok($first, '>', $pub_ids->max($alloc) // 0,
		"subscriber's $alloc hands out IDs above every ID the publisher handed out");
	cmp_ok($first, '>=', $pub_end{$alloc},
		"subscriber's $alloc hands out IDs at or above the publisher's persisted_end ($pub_end{$alloc})");
}
is(row_of($sub, 'subonly'), $subonly_row, 'subonly: the subscriber\'s row is unchanged');
my $max = $sub_ids->max('subonly');
my ($first) = take($sub, $sub_ids, 'subonly', 3, 'sub after sync');
$first //= -1;
cmp_ok($first, '>', $max, 'subonly still works, above its earlier IDs');
($first) = take($sub, $sub_ids, 'subhigh', 3, 'sub after sync');
$first //= -1;
cmp_ok($first, '>=', 9000000000000, 'subhigh was not lowered (>= 9e12)');
ok(row_of($sub, 'subextra') ne '', 'subextra still exists');

############################################################################
# streaming
# the publisher hands out IDs past its persisted windows (block advances
# are written in place), then commits a transaction
take($pub, $pub_ids, 'pubonly', 200, 'pub streaming');
$pub_ids->add_range('default', 'pub streaming batch',
	split /\|/, $pub->safe_psql('postgres', 'SELECT start_id, end_id FROM idalloc_batch(1000000)'));
$pub->safe_psql('postgres', q{SELECT idalloc_create('later', start => 77)});
%pid = registry_ids($pub);
is($pid{later}, $sid{subextra},
	'precondition: the publisher\'s later has the registry id of the subscriber\'s subextra');
ok( poll_bounded($sub,
		q{SELECT count(*) = 1 FROM public.idalloc_registry WHERE name = 'later'}, $wait),
	'an allocator created on the publisher appears on the subscriber');
is(($sub->psql('postgres', q{SELECT idalloc_one('later')}))[1],
	'77', 'the replicated allocator works on the subscriber');
ok(row_of($sub, 'subextra') ne '', 'subextra is still there');
$pub->safe_psql('postgres', q{SELECT idalloc_drop('pubonly')});
$pub->safe_psql('postgres', q{SELECT idalloc_create('later2')});
ok( poll_bounded($sub,
		q{SELECT count(*) = 1 FROM public.idalloc_registry WHERE name = 'later2'}, $wait),
	'after a drop on the publisher, the subscription still applies (later2 arrives)');
is($sub->safe_psql('postgres',
		q{SELECT count(*) FROM public.idalloc_registry WHERE name = 'pubonly'}),
	'1', 'the subscriber keeps pubonly after its drop on the publisher');
$max = $sub_ids->max('pubonly');
my @po = take($sub, $sub_ids, 'pubonly', 3, 'sub after drop on pub');
cmp_ok($po[0] // -1, '>', $max // 0, 'pubonly still works on the subscriber, above its earlier IDs');
for my $alloc (qw(orders subonly subhigh default))
{
	is($sub->safe_psql('postgres',
			"SELECT count(*) FROM public.idalloc_registry WHERE name = '$alloc'"),
		'1', "$alloc still exists on the subscriber");
}
is( $sub->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_subscription WHERE subname = 's' AND pid IS NOT NULL}),
	'1', 'the apply worker is running');

# a user on the subscriber still cannot write the table
for my $w (
	[ 'UPDATE', q{UPDATE public.idalloc_registry SET persisted_end = 1 WHERE name = 'default'} ],
	[ 'DELETE', q{DELETE FROM public.idalloc_registry WHERE name = 'orders'} ])
{
	my ($what, $sql) = @$w;
	my ($state, $out, $err) = sqlstate_of($sub, $sql);
	is($state, '42501', "subscriber: a direct $what fails with 42501") or diag $err;
}

is(join("\n", $sub_ids->repeats), '', 'subscriber: no ID handed out twice');
is(join("\n", $pub_ids->repeats), '', 'publisher: no ID handed out twice');

$sub->psql('postgres', 'DROP SUBSCRIPTION s');
$sub->stop;
$pub->stop;
done_testing();
