# Copyright (c) idalloc authors
#
# idalloc from Python with SQLAlchemy (issue 11): clients/python/orders.py,
# the README's snippets, run with Debian's python3-sqlalchemy and psycopg2
# against a throwaway cluster, twice (the migration runs again).
#
#   (a) a model whose primary key has server_default=idalloc_one('orders'):
#       SQLAlchemy inserts with RETURNING and gets the IDs, increasing;
#   (b) a bulk insert whose IDs come from one idalloc_batch call (hi/lo):
#       one call per 500 rows, the rows hold exactly that range;
#   (c) the second run goes on above the first (the allocator was left as
#       it was: if_not_exists); every row's ID is unique.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use IdallocTest;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = idalloc_node('sqlalchemy');
my $url = 'postgresql+psycopg2:///postgres?host=' . $node->host . '&port=' . $node->port;
my $script = "$FindBin::RealBin/../clients/python/orders.py";

my $last_max = 0;
for my $run (1, 2)
{
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ '/usr/bin/python3', $script, $url ], '>', \$out, '2>', \$err);
	ok($ok, "run $run: orders.py succeeds") or diag $err;
	my @one = map { /^one (\d+)$/ ? $1 : () } split /\n/, $out;
	my @batches = map { /^batch (\d+) (\d+)$/ ? [ $1, $2 ] : () } split /\n/, $out;
	my @sql = map { /^sql (.*)$/ ? $1 : () } split /\n/, $out;

	# (a)
	is(scalar @one, 20, "(a) run $run: 20 orders inserted one by one");
	ok((grep { /^INSERT INTO orders \(item\) VALUES \(.*\) RETURNING orders\.id$/ } @sql) == 20,
		"(a) run $run: each as INSERT ... RETURNING orders.id, the ID left to the server default")
	  or diag join("\n", @sql);
	my $increasing = 1;
	for my $i (1 .. $#one) { $increasing = 0 if $one[$i] <= $one[ $i - 1 ]; }
	ok($increasing, "(a) run $run: their IDs increase");
	cmp_ok($one[0], '>', $last_max, "(c) run $run: above everything before ($one[0] > $last_max)");

	# (b)
	is(scalar(grep { /idalloc_batch/ } @sql), 3, "(b) run $run: one idalloc_batch call per bulk insert (3)");
	is(scalar @batches, 3, "(b) run $run: three bulk inserts");
	my $rows_match = 1;
	for my $b (@batches)
	{
		my ($s, $e) = @$b;
		$rows_match = 0 unless $e - $s == 500;
		my $got = $node->safe_psql('postgres',
			"SELECT count(*) || ':' || min(id) || ':' || max(id) FROM orders WHERE item LIKE 'bulk %' AND id >= $s AND id < $e");
		$rows_match = 0 unless $got eq '500:' . $s . ':' . ($e - 1);
	}
	ok($rows_match, "(b) run $run: each bulk insert's 500 rows hold exactly its batch [start, end)");
	$last_max = $node->safe_psql('postgres', 'SELECT max(id) FROM orders');
}

# (c)
is($node->safe_psql('postgres', q{SELECT count(*) || ':' || count(DISTINCT id) FROM orders}),
	'3040:3040', '(c) 3040 rows, 3040 distinct IDs');
is($node->safe_psql('postgres', "SELECT count(*) FROM idalloc_allocators WHERE name = 'orders'"),
	'1', '(c) one allocator: the second run\'s create was skipped');

$node->stop;
done_testing();
