# Copyright (c) idalloc authors
#
# G1 when two installations of the extension overlap in one transaction
# (issue 7, defect 2): DROP EXTENSION and CREATE EXTENSION in the same
# transaction, which is what a restore with --clean in one transaction
# does.  Shared state must never be shared between the two installations,
# and a restored row must raise the new row (flushed), not only shared
# memory.
#
#   (a) pg_dump -Fc, then pg_restore --clean --if-exists
#       --single-transaction --exit-on-error into the same database;
#   (b) pg_dump -c --if-exists (plain), then psql -1 -v ON_ERROR_STOP=1;
#       in both, IDs handed out before the dump and between the dump and
#       the restore are never handed out again by the restored `default`
#       and `orders` (cache 10): the first ID after the restore is above
#       all of them, also after an immediate restart.
#   (c) BEGIN; DROP EXTENSION; CREATE EXTENSION; idalloc_one() x2; COMMIT:
#       the new installation's `default` carries on above every ID the old
#       installation handed out (the positions of the dropped installation
#       are carried into one created in the same transaction), never
#       repeats an ID (those of the transaction included), its row's
#       persisted_end covers them, and an immediate restart continues
#       above them.
#   (d) the same transaction rolled back: the old installation keeps
#       working, above every ID it handed out.
#
# IDs are recorded per allocator name: in one transaction, a new
# installation continues where the dropped one stood, so no ID of either
# may repeat.  (Committed on its own, a DROP EXTENSION forgets the
# allocators, as dropping a sequence does; that is not tested here.)
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdallocTest qw(idalloc_node lines);

my $node = idalloc_node('reinstall', no_extension => 1);
my @conn = ('-h', $node->host, '-p', $node->port);
my $tmp = PostgreSQL::Test::Utils::tempdir;

sub call_one
{
	my ($alloc) = @_;
	return $alloc eq 'default' ? 'idalloc_one()' : "idalloc_one('$alloc')";
}

# In one new session: $n IDs of $alloc by idalloc_one and a batch of 4;
# recorded in $set.  Returns the IDs (the batch expanded).
sub take
{
	my ($db, $set, $alloc, $where, $n) = @_;
	my $call = call_one($alloc);
	my $batch =
	  $alloc eq 'default' ? 'idalloc_batch(4)' : "idalloc_batch('$alloc', 4)";
	my @out = lines(
		$node->safe_psql(
			$db, qq{
		SELECT $call FROM generate_series(1, $n);
		SELECT start_id || ':' || end_id FROM $batch;}));
	my @ids;
	for my $v (@out)
	{
		if ($v =~ /^(-?\d+):(-?\d+)$/)
		{
			die "bad batch [$1, $2) ($where)" unless $2 - $1 == 4;
			$set->add_range($alloc, $where, $1, $2);
			push @ids, $1 .. $2 - 1;
		}
		else
		{
			$set->add_ids($alloc, $where, $v);
			push @ids, $v;
		}
	}
	die "expected " . ($n + 4) . " IDs of $alloc ($where), got " . scalar(@ids)
	  unless @ids == $n + 4;
	return @ids;
}

# take() in $k sessions; returns every ID
sub take_sessions
{
	my ($db, $set, $alloc, $where, $k, $n) = @_;
	return map { take($db, $set, $alloc, "$where/s$_", $n) } 1 .. $k;
}

sub min_of { my $m; for (@_) { $m = $_ if !defined $m || $_ < $m; } return $m; }
sub max_of { my $m; for (@_) { $m = $_ if !defined $m || $_ > $m; } return $m; }

sub check_no_repeats
{
	my ($set, $tag) = @_;
	is(join("\n", $set->repeats), '', "$tag: no ID handed out twice");
	return;
}

sub setup_db
{
	my ($db, $app_table) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION idalloc');
	$node->safe_psql($db, q{SELECT idalloc_create('orders', cache => 10)});
	$node->safe_psql(
		$db, q{
		CREATE TABLE orders (id bigint PRIMARY KEY DEFAULT idalloc_one('orders'),
		                     note text);
		INSERT INTO orders (note) SELECT 'o' || g FROM generate_series(1, 12) g;})
	  if $app_table;
	return;
}

############################################################################
# (a), (b): restore with --clean in one transaction into the same database
sub restore_case
{
	my ($tag, $db, $dump_cmd, $restore_cmd) = @_;
	setup_db($db, 1);
	my $set = IdallocTest::IdSet->new;
	# the application table's IDs were handed out too
	$set->add_ids('orders', "$tag/app",
		lines($node->safe_psql($db, 'SELECT id FROM orders')));
	for my $alloc (qw(default orders))
	{
		take_sessions($db, $set, $alloc, "$tag/before dump", 3, 9);
	}

	$node->command_ok($dump_cmd, "$tag: dump");

	# handed out after the dump, before the restore: some inside the block
	# persisted at the time of the dump, and a batch that runs past it
	# (the dump does not know of those: the dropped installation's
	# positions carry them over)
	for my $alloc (qw(default orders))
	{
		take_sessions($db, $set, $alloc, "$tag/after dump", 2, 5);
		my $call = $alloc eq 'default' ? 'idalloc_batch(250000)'
		  : "idalloc_batch('$alloc', 250000)";
		my ($s, $e) = split /\|/,
		  $node->safe_psql($db, "SELECT start_id, end_id FROM $call");
		$set->add_range($alloc, "$tag/after dump, past the block", $s, $e);
	}
	my %max_before = map { $_ => $set->max($_) } qw(default orders);

	$node->command_ok($restore_cmd, "$tag: restore with --clean in one transaction");

	is( $node->safe_psql($db,
			q{SELECT string_agg(name || ':' || cache, ',' ORDER BY name)
			    FROM public.idalloc_registry}),
		'default:1,orders:10',
		"$tag: default and orders (cache 10) exist once each after the restore");
	is($node->safe_psql($db, 'SELECT count(*) FROM orders'),
		'12', "$tag: the application table is restored");

	for my $alloc (qw(default orders))
	{
		my @after = take_sessions($db, $set, $alloc, "$tag/after restore", 3, 6);
		cmp_ok(min_of(@after), '>', $max_before{$alloc},
			"$tag: every ID of $alloc after the restore is above every ID before ($max_before{$alloc})"
		);
	}
	my $row = $node->safe_psql($db, q{INSERT INTO orders (note) VALUES ('new') RETURNING id});
	$set->add_ids('orders', "$tag/app after restore", $row);
	cmp_ok($row, '>', $max_before{orders},
		"$tag: a row inserted with DEFAULT idalloc_one('orders') gets a new ID");

	my %max_restored = map { $_ => $set->max($_) } qw(default orders);
	$node->stop('immediate');
	$node->start;
	for my $alloc (qw(default orders))
	{
		my @after = take_sessions($db, $set, $alloc, "$tag/after crash", 2, 3);
		cmp_ok(min_of(@after), '>', $max_restored{$alloc},
			"$tag: after an immediate restart every ID of $alloc is above every ID before"
		);
	}
	check_no_repeats($set, $tag);
	return;
}

my $dump_c = "$tmp/ra.dump";
restore_case(
	'(a) pg_restore -Fc --clean --single-transaction',
	'ra',
	[ 'pg_dump', @conn, '-Fc', '-f', $dump_c, 'ra' ],
	[
		'pg_restore', @conn, '--clean', '--if-exists', '--single-transaction',
		'--exit-on-error', '-d', 'ra', $dump_c
	]);

my $dump_p = "$tmp/rb.sql";
restore_case(
	'(b) pg_dump -c | psql -1',
	'rb',
	[ 'pg_dump', @conn, '-c', '--if-exists', '-f', $dump_p, 'rb' ],
	[
		'psql', @conn, '-X', '-q', '-1', '-v', 'ON_ERROR_STOP=1',
		'-d', 'rb', '-f', $dump_p
	]);

############################################################################
# (c) DROP EXTENSION and CREATE EXTENSION in one committed transaction
setup_db('rc', 0);
my $old = IdallocTest::IdSet->new;
for my $alloc (qw(default orders))
{
	take_sessions('rc', $old, $alloc, '(c) old', 3, 10);
}
# the new installation must also stay clear of the old one's IDs: record
# both in one set
my $new = $old;
my @in_txn = lines(
	$node->safe_psql(
		'rc', q{
	BEGIN;
	DROP EXTENSION idalloc;
	CREATE EXTENSION idalloc;
	SELECT idalloc_one();
	SELECT idalloc_one();
	COMMIT;}));
is(scalar(@in_txn), 2, '(c) two IDs handed out inside the transaction');
my $old_max = $old->max('default');
cmp_ok($in_txn[0], '>', $old_max,
	"(c) the new installation's default carries on above the old one's IDs ($old_max)");
$new->add_ids('default', '(c) in the transaction', @in_txn);
cmp_ok($in_txn[1], '>', $in_txn[0], '(c) increasing inside the transaction');
is($node->safe_psql('rc', 'SELECT string_agg(name, \',\') FROM public.idalloc_registry'),
	'default', '(c) the new installation has only its default');
my $end = $node->safe_psql('rc',
	q{SELECT persisted_end FROM public.idalloc_registry WHERE name = 'default'});
cmp_ok($end, '>', $new->max('default'),
	'(c) after commit, the row\'s persisted_end is above every ID of the transaction');

$node->stop('immediate');
$node->start;
my @after = take_sessions('rc', $new, 'default', '(c) after crash', 1, 3);
cmp_ok(min_of(@after), '>', max_of(@in_txn),
	'(c) after an immediate restart, the new default continues above the IDs of the transaction'
);
# enough IDs to run over everything the old installation handed out
take_sessions('rc', $new, 'default', '(c) new sessions', 4, 15);
my $max_new = $new->max('default');
$node->stop('immediate');
$node->start;
@after = take_sessions('rc', $new, 'default', '(c) after 2nd crash', 2, 5);
cmp_ok(min_of(@after), '>', $max_new,
	'(c) after a second immediate restart, above every ID before');
check_no_repeats($new, '(c) old and new installation');

############################################################################
# (d) the same transaction rolled back
setup_db('rd', 0);
$old = IdallocTest::IdSet->new;
for my $alloc (qw(default orders))
{
	take_sessions('rd', $old, $alloc, '(d) old', 3, 10);
}
my $aborted = IdallocTest::IdSet->new;
my ($ret, $stdout, $stderr) = $node->psql(
	'rd', q{
	BEGIN;
	DROP EXTENSION idalloc;
	CREATE EXTENSION idalloc;
	SELECT idalloc_one();
	SELECT idalloc_one();
	ROLLBACK;});
is($ret, 0, '(d) the rolled-back transaction ran') or diag $stderr;
$aborted->add_ids('default', '(d) rolled back', lines($stdout));
is( $node->safe_psql('rd',
		q{SELECT string_agg(name || ':' || cache, ',' ORDER BY name) FROM public.idalloc_registry}),
	'default:1,orders:10',
	'(d) after the rollback the old installation has its allocators');
for my $alloc (qw(default orders))
{
	my $max = $old->max($alloc);
	my @ids = take_sessions('rd', $old, $alloc, '(d) after rollback', 3, 5);
	cmp_ok(min_of(@ids), '>', $max,
		"(d) after the rollback $alloc continues above every ID it handed out ($max)");
}
my %max_old = map { $_ => $old->max($_) } qw(default orders);
$node->stop('immediate');
$node->start;
for my $alloc (qw(default orders))
{
	my @ids = take_sessions('rd', $old, $alloc, '(d) after crash', 2, 5);
	cmp_ok(min_of(@ids), '>', $max_old{$alloc},
		"(d) after an immediate restart $alloc continues above every ID before");
}
check_no_repeats($old, '(d) old installation');

$node->stop;
done_testing();
