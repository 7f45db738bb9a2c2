# Copyright (c) idalloc authors
#
# idalloc from Node.js with node-postgres (issue 11): clients/node/orders.js,
# the README's snippets, with pg from the npm registry (npm ci from
# clients/node/package-lock.json), against a throwaway cluster: 8 workers
# share a pg.Pool of 4 connections.
#
#   (a) a column DEFAULT idalloc_one('orders') and INSERT ... RETURNING id:
#       every worker gets its IDs, increasing in the order it inserted
#       (cache 1: G2 across sessions, whichever pooled connection it used);
#   (b) bulk inserts whose IDs come from one idalloc_batch call each
#       (hi/lo): the rows hold exactly the batch's range;
#   (c) every ID unique; bigints kept exact (strings / BigInt in JS);
#   (d) run again (the migration with if_not_exists): above the first run.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use IdallocTest;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;

my $src = "$FindBin::RealBin/../clients/node";
my $dir = PostgreSQL::Test::Utils::tempdir;
for my $f ('package.json', 'package-lock.json', 'orders.js')
{
	PostgreSQL::Test::Utils::append_to_file("$dir/$f", slurp_file("$src/$f"));
}
# npm's cache and config under the test's directory (this runs as postgres)
my @env = ("HOME=$dir", "npm_config_cache=$dir/.npm", 'npm_config_update_notifier=false');
my ($out, $err) = ('', '');
my $ok = IPC::Run::run([ 'env', @env, 'npm', 'ci', '--no-audit', '--no-fund', '--prefix', $dir ],
	'>', \$out, '2>', \$err);
ok($ok, 'npm ci installs pg from the lock file') or diag "$out\n$err";
like(slurp_file("$dir/node_modules/pg/package.json"), qr/"version": "8\./, 'pg 8 is installed');

my $node = idalloc_node('node_pg');
my $url = 'postgresql:///postgres?host=' . $node->host . '&port=' . $node->port;

my $last_max = 0;
for my $run (1, 2)
{
	($out, $err) = ('', '');
	$ok = IPC::Run::run([ 'env', @env, 'USER=' . getpwuid($>), 'node', "$dir/orders.js", $url, 8, 50 ],
		'>', \$out, '2>', \$err);
	ok($ok, "run $run: orders.js succeeds") or diag $err;
	my $res = eval { decode_json($out) } // { one => [], batches => [] };

	# (a)
	is(scalar @{ $res->{one} }, 400, "(a) run $run: 8 workers inserted 50 orders each with RETURNING");
	my (%last, $increasing);
	$increasing = 1;
	for my $e (@{ $res->{one} })
	{
		my ($w, $id) = @$e;
		$increasing = 0 if defined $last{$w} && $id <= $last{$w};
		$last{$w} = $id;
	}
	ok($increasing, "(a) run $run: each worker's IDs increase, across the pool's connections");
	my $min = (sort { $a <=> $b } map { $_->[1] } @{ $res->{one} })[0] // 0;
	cmp_ok($min, '>', $last_max, "(d) run $run: above everything before");

	# (b)
	is(scalar @{ $res->{batches} }, 40, "(b) run $run: 40 bulk inserts of 100 rows");
	my $rows_match = 1;
	for my $b (@{ $res->{batches} })
	{
		my (undef, $s, $e) = @$b;
		$rows_match = 0 unless $e - $s == 100;
		$rows_match = 0 unless $node->safe_psql('postgres',
			"SELECT count(*) || ':' || min(id) || ':' || max(id) FROM orders WHERE id >= $s AND id < $e")
		  eq '100:' . $s . ':' . ($e - 1);
	}
	ok($rows_match, "(b) run $run: each bulk insert's rows hold exactly its batch");
	$last_max = $node->safe_psql('postgres', 'SELECT max(id) FROM orders');
}

# (c)
is($node->safe_psql('postgres', q{SELECT count(*) || ':' || count(DISTINCT id) FROM orders}),
	'8800:8800', '(c) 8800 rows, 8800 distinct IDs');

# (c) bigints past 2^53 stay exact
$node->safe_psql('postgres', "SELECT idalloc_advance('orders', 9007199254740993)");
($out, $err) = ('', '');
$ok = IPC::Run::run([ 'env', @env, 'USER=' . getpwuid($>), 'node', "$dir/orders.js", $url, 1, 10 ],
	'>', \$out, '2>', \$err);
my $res = eval { decode_json($out) } // { batches => [[0, 0, 0]] };
is($res->{batches}[0][1], $node->safe_psql('postgres',
		"SELECT min(id) FROM orders WHERE item LIKE 'bulk 0.9.%' AND id > 9007199254740992"),
	'(c) a batch above 2^53 is exact in JS (BigInt) and in the table');

$node->stop;
done_testing();
