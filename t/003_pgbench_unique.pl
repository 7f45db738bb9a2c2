# Copyright (c) idalloc authors
#
# Concurrency: several pgbench clients take IDs at once from
#   default  (block 200000, cache 1)
#   small    (block 7, cache 1: a block advance every 7 IDs, so the slow
#            path and its waiters are exercised constantly)
#   cached   (block 7, cache 4)
# with idalloc_one(), idalloc_one(name) and idalloc_batch(name, 3), and
# store what they got.  Then:
#   - every ID is unique per allocator (G1);
#   - every batch has exactly 3 IDs (G3), batches do not overlap each other
#     nor any single ID;
#   - within each session, IDs of an allocator are strictly increasing, in
#     statement order, singles and batches together (G2; for the cached
#     allocator singles only: see below);
#   - the allocators' next_id is above everything handed out.
# Run once in simple and once in prepared protocol (prepared statements keep
# their per-call-site state across executions, including when one call
# site sees several allocator names).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use IdallocTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# idalloc.max_block = 1: every allocator's step stays at its (tiny) block,
# so that the sessions race block advances all the time (the adaptive step
# would otherwise make them rare: t/016_step.pl)
my $node = idalloc_node('pgbench',
	conf => "max_connections = 20\nidalloc.max_block = 1\n");
$node->safe_psql(
	'postgres', q{
	SELECT idalloc_create('small', block => 7);
	SELECT idalloc_create('cached', start => 1000000, block => 7, cache => 4);
	CREATE SEQUENCE ord;
	-- one row per single ID, one per batch; (run, pid) is a session,
	-- seq orders the statements of a session
	CREATE TABLE ids (run int, alloc text, id bigint, pid int, seq bigint);
	CREATE TABLE ranges (run int, alloc text, s bigint, e bigint, pid int,
	                     seq bigint);
});

my $clients = 6;
my $xacts = 500;
my %scripts = (
	'003_one.sql' => q{
INSERT INTO ids VALUES (:run, 'default', idalloc_one(), pg_backend_pid(), nextval('ord'));
},
	'003_small.sql' => q{
INSERT INTO ids VALUES (:run, 'small', idalloc_one('small'), pg_backend_pid(), nextval('ord'));
},
	'003_batch.sql' => q{
INSERT INTO ranges SELECT :run, 'small', start_id, end_id, pg_backend_pid(), nextval('ord')
  FROM idalloc_batch('small', 3);
},
	'003_batch_default.sql' => q{
INSERT INTO ranges SELECT :run, 'default', start_id, end_id, pg_backend_pid(), nextval('ord')
  FROM idalloc_batch(3);
},
	'003_mixed.sql' => q{
\set r random(1, 3)
BEGIN;
INSERT INTO ids SELECT :run, n, idalloc_one(n), pg_backend_pid(), nextval('ord')
  FROM (VALUES ('small'), ('cached'), ('default'), ('small')) v(n);
INSERT INTO ids SELECT :run, n, idalloc_one(n), pg_backend_pid(), nextval('ord')
  FROM (VALUES (CASE :r::int WHEN 1 THEN 'small' WHEN 2 THEN 'cached' ELSE 'default' END)) v(n);
INSERT INTO ranges SELECT :run, 'cached', start_id, end_id, pg_backend_pid(), nextval('ord')
  FROM idalloc_batch('cached', 3);
COMMIT;
},);

my $run = 0;
for my $mode (qw(simple prepared))
{
	$run++;
	my %files;
	# pgbench refuses to overwrite its script files: name them per run
	for my $f (keys %scripts)
	{
		(my $g = $f) =~ s/\.sql$/_$mode.sql/;
		$files{$g} = $scripts{$f};
	}
	$node->pgbench(
		"--no-vacuum --client=$clients --jobs=$clients --transactions=$xacts --protocol=$mode --define=run=$run",
		0,
		[
			qr{processed: @{[ $clients * $xacts ]}/@{[ $clients * $xacts ]}},
			qr{number of failed transactions: 0}
		],
		[qr{^$}],
		"pgbench run $run ($mode protocol) succeeds",
		\%files);
}

sub q1 { return $node->safe_psql('postgres', $_[0]); }

# sanity: real concurrency and enough of everything
is(q1('SELECT count(DISTINCT (run, pid)) FROM ids'),
	2 * $clients, "IDs came from $clients sessions per run");
cmp_ok(q1("SELECT count(*) FROM ids WHERE alloc = 'small'"),
	'>', 500, 'many single IDs of small');
cmp_ok(q1("SELECT count(*) FROM ranges WHERE alloc = 'small'"),
	'>', 100, 'many batches of small');
cmp_ok(q1("SELECT count(*) FROM ids WHERE alloc = 'cached'"),
	'>', 100, 'many single IDs of cached');
cmp_ok(q1("SELECT block_advances FROM idalloc_allocators WHERE name = 'small'"),
	'>', 100, 'small advanced its block many times');

# G1: unique
is( q1(q{SELECT count(*) - count(DISTINCT (alloc, id)) FROM ids}),
	'0', 'single IDs are unique per allocator');
is( q1(q{SELECT string_agg(alloc || ':' || id, ', ') FROM
	        (SELECT alloc, id FROM ids GROUP BY 1, 2 HAVING count(*) > 1 LIMIT 10) d}),
	'', 'no duplicate single IDs (list)');

# G3: batches are exact, disjoint, and disjoint from single IDs
is(q1('SELECT count(*) FROM ranges WHERE e - s <> 3'),
	'0', 'every batch holds exactly 3 IDs');
is( q1(q{SELECT count(*) FROM
	        (SELECT s, lag(e) OVER (PARTITION BY alloc ORDER BY s) AS prev_e
	           FROM ranges) x
	      WHERE prev_e > s}),
	'0', 'batches of an allocator do not overlap each other');
is( q1(q{SELECT count(*) FROM ids i JOIN ranges r
	        ON r.alloc = i.alloc AND i.id >= r.s AND i.id < r.e}),
	'0', 'no single ID falls inside a batch');

# G2: within a session, strictly increasing in statement order.  For the
# cached allocator only single IDs are ordered: a batch larger than the rest
# of the session's cached range comes from the global counter and leaves
# the cache alone, so later single IDs can be below it (README, "What is
# ordered").
my $violations = q1(
	q{WITH items AS (
	     SELECT run, pid, alloc, seq, id AS lo, id AS hi FROM ids
	     UNION ALL
	     SELECT run, pid, alloc, seq, s, e - 1 FROM ranges
	      WHERE alloc <> 'cached'),
	   ordered AS (
	     SELECT *, lag(hi) OVER (PARTITION BY run, pid, alloc ORDER BY seq) AS prev_hi
	       FROM items)
	  SELECT count(*) || ' ' || coalesce(string_agg(alloc || ':' || prev_hi || '->' || lo, ', '), '')
	    FROM ordered WHERE lo <= prev_hi});
is($violations, '0 ', 'IDs are strictly increasing within each session, per allocator');

# the allocators' state is above everything handed out
is( q1(q{SELECT string_agg(a.name, ', ') FROM idalloc_allocators a
	      WHERE a.next_id <= (SELECT max(x) FROM
	              (SELECT id AS x FROM ids WHERE alloc = a.name
	               UNION ALL SELECT e - 1 FROM ranges WHERE alloc = a.name) u)
	         OR a.persisted_until < a.next_id}),
	'', 'next_id of every allocator is above every ID handed out, and within persisted_until');

# and the next ID taken is above everything too
for my $alloc (qw(default small cached))
{
	my $max = q1(
		"SELECT max(x) FROM (SELECT id AS x FROM ids WHERE alloc = '$alloc'
		 UNION ALL SELECT e - 1 FROM ranges WHERE alloc = '$alloc') u");
	cmp_ok(q1("SELECT idalloc_one('$alloc')"), '>', $max,
		"next ID of $alloc is above every ID the sessions took ($max)");
}

$node->stop;
done_testing();
