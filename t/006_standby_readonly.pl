# Copyright (c) idalloc authors
#
# Read-only states and failover.
#   1. On a hot standby, allocation fails with 25006 (read-only), and so do
#      the management functions; the view still works.
#   2. On the primary, in a READ ONLY transaction or with
#      default_transaction_read_only = on: 25006, and no ID is consumed.
#   3. With a synchronous standby (synchronous_standby_names = '*'), IDs
#      handed out on the primary -- autocommit, rolled back, in sessions with
#      synchronous_commit = off, batches -- are never handed out again by the
#      standby once it is promoted after a crash of the primary (G1).
#   4. The same when the synchronous standby is DOWN at the time of the
#      block advance: an allocation that needs a new block must wait for the
#      standby (or fail), whatever the session's synchronous_commit says and
#      also when the wait is cancelled; any ID it did return must not repeat
#      after the standby is promoted.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use IdallocTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

sub next_ids
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		q{SELECT string_agg(name || '=' || next_id, ',' ORDER BY name) FROM idalloc_allocators});
}

sub make_pair
{
	my ($name) = @_;
	my $primary =
	  idalloc_node("${name}_primary", init => { allows_streaming => 1 },
		# the callers' own block advances are what is tested here (their
		# wait for the standby, its cancellation): no persister
		conf => "idalloc.persister = off\n");
	$primary->safe_psql(
		'postgres', q{
		SELECT idalloc_alter('default', block => 7);
		SELECT idalloc_create('p', block => 5);
		SELECT idalloc_create('q', start => 1000, block => 5);
		CREATE TABLE sink (id bigint);
	});
	$primary->backup('bk');
	my $standby = PostgreSQL::Test::Cluster->new("${name}_standby");
	$standby->init_from_backup($primary, 'bk', has_streaming => 1);
	$standby->start;
	# only now (not in the standby's copy of the configuration): the standby
	# is synchronous
	$primary->append_conf('postgresql.conf', "synchronous_standby_names = '*'\n");
	$primary->reload;
	$primary->poll_query_until('postgres',
		q{SELECT sync_state = 'sync' FROM pg_stat_replication})
	  or die 'standby did not become synchronous';
	return ($primary, $standby);
}

# Crash the primary, promote the standby; the first ID of each allocator on
# the promoted standby must be above every ID the primary handed out.
sub failover_and_check
{
	my ($primary, $standby, $tag, $max, $persisted) = @_;
	$primary->stop('immediate');
	$standby->start unless defined $standby->{_pid};
	$standby->promote;
	$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
	  or die 'standby was not promoted';
	for my $alloc (sort keys %$max)
	{
		my $first = $standby->safe_psql('postgres', 'SELECT ' . one_call($alloc));
		cmp_ok($first, '>', $max->{$alloc},
			"$tag: first ID of $alloc on the promoted standby is above every ID the primary handed out ($max->{$alloc})"
		);
		if (defined $persisted)
		{
			cmp_ok($first, '<=', $persisted->{$alloc},
				"$tag: ... and within the block the primary had persisted ($persisted->{$alloc})"
			);
		}
	}
	return;
}

############################################################################
# 1 + 2 + 3
my ($primary, $standby) = make_pair('a');

# every ID the primary handed out
my $ids = IdallocTest::IdSet->new;

# Record the output of $sql: single IDs, or batches as "start|end" lines.
sub take
{
	my ($node, $alloc, $sql) = @_;
	for my $line (lines($node->safe_psql('postgres', $sql)))
	{
		if ($line =~ /^(\d+)\|(\d+)$/)
		{
			$ids->add_range($alloc, $sql, $1, $2);
		}
		else
		{
			$ids->add_ids($alloc, $sql, $line);
		}
	}
	return;
}

take($primary, 'default', 'SELECT idalloc_one() FROM generate_series(1, 10)');
take($primary, 'p', q{SELECT idalloc_one('p') FROM generate_series(1, 10)});
$primary->wait_for_catchup($standby);

# 1. standby
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'),
	't', 'standby is in recovery');
fails_with($standby, 'SELECT idalloc_one()', '25006', 'standby: idalloc_one()');
fails_with($standby, q{SELECT idalloc_one('p')}, '25006',
	q{standby: idalloc_one('p')});
fails_with($standby, 'SELECT * FROM idalloc_batch(3)', '25006',
	'standby: idalloc_batch(3)');
fails_with($standby, q{SELECT * FROM idalloc_batch('p', 3)}, '25006',
	q{standby: idalloc_batch('p', 3)});
fails_with($standby, q{SELECT idalloc_create('z')}, '25006',
	q{standby: idalloc_create('z')});
fails_with($standby, q{SELECT idalloc_drop('p')}, '25006',
	q{standby: idalloc_drop('p')});
fails_with($standby, q{SELECT idalloc_advance('p', 100)}, '25006',
	q{standby: idalloc_advance('p', 100)});
fails_with($standby, q{SELECT idalloc_alter('p', block => 3)}, '25006',
	q{standby: idalloc_alter('p')});
is( $standby->safe_psql('postgres',
		q{SELECT string_agg(name, ',' ORDER BY name) FROM idalloc_allocators}),
	'default,p,q', 'standby: idalloc_allocators can be read');

# 2. read-only on the primary
my $before = next_ids($primary);
fails_with($primary, 'BEGIN READ ONLY; SELECT idalloc_one()', '25006',
	'primary: idalloc_one() in BEGIN READ ONLY');
fails_with($primary, q{BEGIN READ ONLY; SELECT * FROM idalloc_batch('p', 50)},
	'25006', q{primary: idalloc_batch('p', 50) in BEGIN READ ONLY});
fails_with(
	$primary,
	'BEGIN; SET TRANSACTION READ ONLY; SELECT idalloc_one()',
	'25006', 'primary: idalloc_one() after SET TRANSACTION READ ONLY');
fails_with(
	$primary,
	'SET default_transaction_read_only = on; SELECT idalloc_one()',
	'25006', 'primary: idalloc_one() with default_transaction_read_only');
fails_with(
	$primary,
	q{SET default_transaction_read_only = on; SELECT idalloc_one('p')},
	'25006', q{primary: idalloc_one('p') with default_transaction_read_only});
is(next_ids($primary), $before, 'primary: the read-only errors consumed no IDs');
take($primary, 'default', 'SELECT idalloc_one()');
cmp_ok($primary->safe_psql('postgres', 'SELECT idalloc_one()'),
	'>', $ids->max('default'),
	'primary: allocation works again after the read-only errors');

# 3. allocate in every way on the primary, crash it, promote the standby
take($primary, 'default', 'SELECT idalloc_one() FROM generate_series(1, 23)');
take($primary, 'p', q{SELECT idalloc_one('p') FROM generate_series(1, 23)});
take($primary, 'q', q{SELECT idalloc_one('q') FROM generate_series(1, 23)});
take($primary, 'p',
	q{BEGIN; SELECT idalloc_one('p') FROM generate_series(1, 12); ROLLBACK;});
take($primary, 'q',
	q{BEGIN; SELECT start_id || '|' || end_id FROM idalloc_batch('q', 13); ROLLBACK;});
take($primary, 'default',
	q{SET synchronous_commit = off;
	  INSERT INTO sink SELECT idalloc_one() FROM generate_series(1, 17) RETURNING id;});
take($primary, 'p',
	q{SET synchronous_commit = off; BEGIN;
	  INSERT INTO sink SELECT idalloc_one('p') FROM generate_series(1, 17) RETURNING id;
	  ROLLBACK;});
take($primary, 'q',
	q{SET synchronous_commit = local;
	  SELECT start_id || '|' || end_id FROM idalloc_batch('q', 4)});
take($primary, 'default',
	q{SELECT start_id || '|' || end_id FROM idalloc_batch(9)});
no_repeats($ids, 'primary handed out no ID twice');

my %persisted = persisted_until($primary);
my %max = map { ($_ => $ids->max($_)) } $ids->allocators;
failover_and_check($primary, $standby, 'sync standby promoted', \%max,
	\%persisted);
$standby->stop;

############################################################################
# 4. block advances while the synchronous standby is down
($primary, $standby) = make_pair('b');

# use up the first block of p and q exactly (block 5), so that the next
# allocation of each needs a block advance
my %max4;
$max4{p} = $primary->safe_psql('postgres',
	q{SELECT max(idalloc_one('p')) FROM generate_series(1, 5)});
$max4{q} = $primary->safe_psql('postgres',
	q{SELECT max(idalloc_one('q')) FROM generate_series(1, 5)});
is( $primary->safe_psql('postgres',
		q{SELECT string_agg(name || ':' || (next_id = persisted_until), ',' ORDER BY name)
		    FROM idalloc_allocators WHERE name IN ('p', 'q')}),
	'p:true,q:true', 'the blocks of p and q are used up');
$primary->wait_for_catchup($standby);
$standby->stop;
$primary->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM pg_stat_replication})
  or die 'standby still connected';

# 4a: synchronous_commit = off in the session
my $bg_off = $primary->background_psql('postgres', on_error_stop => 0);
my $pid_off = $bg_off->query_safe('SELECT pg_backend_pid()');
$bg_off->query_safe('SET synchronous_commit = off');
$bg_off->query_until(qr/sent/,
	"\\echo sent\nSELECT start_id || '|' || end_id FROM idalloc_batch('p', 3);\n\\echo end-p\n"
);

# 4b: synchronous_commit = on, and the wait gets cancelled
my $bg_on = $primary->background_psql('postgres', on_error_stop => 0);
my $pid_on = $bg_on->query_safe('SELECT pg_backend_pid()');
$bg_on->query_until(qr/sent/,
	"\\echo sent\nSELECT start_id || '|' || end_id FROM idalloc_batch('q', 3);\n\\echo end-q\n"
);

# each is either waiting for the standby or done
for my $pid ($pid_off, $pid_on)
{
	$primary->poll_query_until(
		'postgres', qq{
		SELECT wait_event = 'SyncRep'
		    OR (state = 'idle' AND query LIKE '%idalloc_batch%')
		  FROM pg_stat_activity WHERE pid = $pid})
	  or die "backend $pid neither waits nor finished";
}
my %sessions = (
	'4a (synchronous_commit = off)' => [ $bg_off, $pid_off, 'p', 'end-p' ],
	'4b (synchronous_commit = on)'  => [ $bg_on,  $pid_on,  'q', 'end-q' ]);
for my $tag (sort keys %sessions)
{
	my ($bg, $pid, $alloc) = @{ $sessions{$tag} };
	is( $primary->safe_psql('postgres',
			"SELECT coalesce(wait_event, state) FROM pg_stat_activity WHERE pid = $pid"),
		'SyncRep',
		"$tag: a block advance waits for the synchronous standby");
}
# cancel both waits: the advance must fail, not hand out unacknowledged IDs
for my $tag (sort keys %sessions)
{
	my ($bg, $pid, $alloc, $marker) = @{ $sessions{$tag} };
	$primary->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
	my $out = $bg->query_until(qr/$marker/, '');
	my $err = $bg->{stderr};
	note "$tag: output after cancel: $out / $err";
	unlike($out, qr/^\d+\|\d+$/m,
		"$tag: a cancelled wait for the synchronous standby hands out no IDs");
	like($err, qr/ERROR:/, "$tag: the cancelled allocation fails with an ERROR");
	# record whatever was handed out all the same
	for (lines($out))
	{
		next unless /^(\d+)\|(\d+)$/;
		$max4{$alloc} = $2 - 1 if $2 - 1 > $max4{$alloc};
	}
}
# nothing is left waiting for the standby
is( $primary->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'}),
	'0', 'no backend is left waiting for the standby');

$primary->stop('immediate');
eval { $bg_off->quit; };
eval { $bg_on->quit; };
failover_and_check($primary, $standby, '4: standby down during the advance',
	\%max4);
$standby->stop;
done_testing();
