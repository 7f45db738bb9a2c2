# Copyright (c) idalloc authors
#
# What a sourced server accepts from its authority, and what its callers
# are told (issue 17, defects 3 and 4; SPEC "Sources" and Errors).  The
# authority's database "bad" has its idalloc_batch replaced by a superuser's
# stand-in (the real one renamed real_batch), whose answer a table chooses.
#
#   (a) every malformed answer is refused with class 08 (08P01) and a
#       detail that says what the authority returned: a wrapped range (end
#       below start, as start + count overflowing 2^63 gives), a reversed
#       and an empty range, a range of the wrong size, an end past
#       9223372036854775807, a value that is not an integer, a NULL start
#       or end, no row, two rows; the authority's own error keeps its
#       SQLSTATE; after each, a good answer is served as if nothing had
#       happened: IDs unique and increasing, next_id and persisted_until
#       of the allocator sane (before the fix the wrapped range raised next
#       to about 2^63 and every later call failed until a restart);
#   (b) an authority that keeps failing is asked again with backoff, not
#       in a loop: its stand-in counts the calls while callers keep asking
#       for 4 seconds;
#   (c) a non-superuser's error names the allocator, the authority's host,
#       port and database and the class of failure, never libpq's or the
#       authority's own words (a role name in "role ... is not permitted to
#       log in", the text of the authority's error); a superuser sees them,
#       and so does the server log;
#   (d) with no file descriptor left for another connection to an
#       authority (max_files_per_process low, many sourced allocators), a
#       fetch fails cleanly with 08004, and the server stays up.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use IdallocTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $ids = IdallocTest::IdSet->new;

my $auth = idalloc_node('authority',
	sql => q{CREATE DATABASE bad;
	         SELECT idalloc_create('v', block => 10);
	         CREATE ROLE fetcher_secret_name LOGIN;});
$auth->safe_psql('bad', q{
	CREATE EXTENSION idalloc;
	SELECT idalloc_create('w', block => 10);
	ALTER FUNCTION public.idalloc_batch(text, bigint) RENAME TO real_batch;
	CREATE TABLE public.stand_in (mode text NOT NULL, calls integer NOT NULL);
	INSERT INTO public.stand_in VALUES ('good', 0);
	CREATE FUNCTION public.idalloc_batch(allocator text, count bigint)
	RETURNS TABLE (start_id numeric, end_id numeric)
	LANGUAGE plpgsql AS $$
	DECLARE
		m text;
		big numeric := 9223372036854775000;
	BEGIN
		UPDATE public.stand_in SET calls = calls + 1 RETURNING mode INTO m;
		CASE m
		WHEN 'good' THEN
			RETURN QUERY SELECT b.start_id::numeric, b.end_id::numeric
			               FROM public.real_batch(allocator, count) b;
		WHEN 'wrap' THEN      -- start + count wrapped past 2^63 (as -fwrapv does)
			RETURN QUERY SELECT big, big + count - 18446744073709551616;
		WHEN 'reversed' THEN
			RETURN QUERY SELECT 100::numeric, 50::numeric;
		WHEN 'empty' THEN
			RETURN QUERY SELECT 100::numeric, 100::numeric;
		WHEN 'size' THEN
			RETURN QUERY SELECT 100::numeric, (100 + count + 1)::numeric;
		WHEN 'past_max' THEN
			RETURN QUERY SELECT big, big + count;
		WHEN 'not_int' THEN
			RETURN QUERY SELECT 1.5, (1.5 + count)::numeric;
		WHEN 'null_start' THEN
			RETURN QUERY SELECT NULL::numeric, (100 + count)::numeric;
		WHEN 'null_end' THEN
			RETURN QUERY SELECT 100::numeric, NULL::numeric;
		WHEN 'no_row' THEN
			RETURN;
		WHEN 'two_rows' THEN
			RETURN QUERY SELECT 100::numeric, (100 + count)::numeric UNION ALL
			             SELECT (200 + count)::numeric, (200 + 2 * count)::numeric;
		WHEN 'odd_state' THEN   -- an error with a SQLSTATE of class 01
			RAISE EXCEPTION 'an error that says it is a warning' USING ERRCODE = '01000';
		WHEN 'error' THEN
			RAISE EXCEPTION 'stand-in says no to words-of-the-authority-5521'
				USING ERRCODE = '22023';
		END CASE;
	END $$;});

my $src = idalloc_node('sourced', conf => "idalloc.max_block = 1000\n");
my $bad = sprintf('host=%s port=%d dbname=bad', $auth->host, $auth->port);
my $secret = sprintf('host=%s port=%d dbname=postgres user=fetcher_secret_name',
	$auth->host, $auth->port);
$src->safe_psql('postgres', qq{
	SELECT idalloc_create('w', block => 10, source => } . sql_literal($bad) . qq{);
	SELECT idalloc_create('v', block => 10, source => } . sql_literal($secret) . qq{);
	CREATE ROLE app LOGIN;});

sub stand_in
{
	my ($mode) = @_;
	$auth->safe_psql('bad', "UPDATE public.stand_in SET mode = '$mode', calls = 0");
}

# $sql on the sourced server as $user: (SQLSTATE or '', stdout, stderr)
sub run_as
{
	my ($user, $sql) = @_;
	my ($out, $err);
	my $ret = $src->psql('postgres', $sql,
		stdout => \$out, stderr => \$err, on_error_stop => 1,
		extra_params => [ '-v', 'VERBOSITY=verbose', '-U', $user ]);
	my $state = $ret == 0 ? '' : ($err =~ /ERROR:\s+([0-9A-Z]{5}):/ ? $1 : 'unknown');
	return ($state, $out, $err);
}

# a batch larger than anything the server holds (max_block 1000): a fetch
my $batch = q{SELECT start_id || '|' || end_id FROM idalloc_batch('w', 5000)};

# A good answer after a refused one: served, unique, above what came before.
sub good_again
{
	my ($tag) = @_;
	stand_in('good');
	my ($state, $out, $err);
	# the authority is asked again after the backoff (at most 5 s): a call
	# that comes earlier gets the last failure again
	for my $try (1 .. 50)
	{
		($state, $out, $err) = run_as('app', $batch);
		last if $state eq '';
		usleep(100_000);
	}
	is($state, '', "$tag: a good answer is served afterwards") or diag $err;
	my ($s, $e) = split /\|/, (lines($out))[0] // '0|0';
	is($e - $s, 5000, "$tag: the batch has its 5000 IDs");
	my $max = $ids->max('w') // 0;
	cmp_ok($s, '>', $max, "$tag: above every ID before");
	cmp_ok($e, '<', 10_000_000, "$tag: and nowhere near 2^63 ($e)");
	$ids->add_range('w', $tag, $s, $e);
}

take_batch($ids, $src, 'w', 5000, 'start');

# --- (c) libpq's words -----------------------------------------------------------------------
take_ids($ids, $src, 'v', 5, '(c) v before');
$auth->safe_psql('postgres', 'ALTER ROLE fetcher_secret_name NOLOGIN');
$src->restart;    # nothing held, no cached connection
my ($state, $out, $err) = run_as('app', q{SELECT idalloc_one('v')});
is($state, '08001', '(c) a login the authority refuses: 08001');
like($err, qr/could not get a block for allocator "v" from its authority \(host=\S+ port=\d+ dbname=postgres\)/,
	'(c) the message names the allocator, host, port and database');
like($err, qr/DETAIL:  The connection to the authority could not be made\./,
	'(c) the detail says what failed');
unlike($err, qr/fetcher_secret_name/, '(c) a non-superuser does not see the role name libpq reported')
  or diag $err;
($state, $out, $err) = run_as($src->safe_psql('postgres', 'SELECT current_user'),
	q{SELECT idalloc_one('v')});
like($err, qr/fetcher_secret_name.*not permitted to log in/s, '(c) a superuser sees libpq\'s message');
like(slurp_file($src->logfile), qr/DETAIL:  The connection to the authority could not be made\. .*fetcher_secret_name/,
	'(c) the server log has libpq\'s message');
$auth->safe_psql('postgres', 'ALTER ROLE fetcher_secret_name LOGIN');
my $ok;
for my $try (1 .. 50)
{
	($state, $out, $err) = run_as('app', q{SELECT idalloc_one('v')});
	if ($state eq '') { $ok = (lines($out))[0]; last; }
	usleep(100_000);
}
ok(defined $ok, '(c) the login allowed again: served') or diag $err;
$ids->add_ids('v', '(c) after', $ok // ());
no_repeats($ids, '(c) no ID handed out twice');


# --- (a) malformed answers -------------------------------------------------------------
my %expect = (
	wrap     => qr/returned \[9223372036854775000, -\d+\), an empty or reversed range/,
	reversed => qr/returned \[100, 50\), an empty or reversed range/,
	empty    => qr/returned \[100, 100\), an empty or reversed range/,
	size     => qr/returned \[100, \d+\), \d+ IDs instead of the \d+ asked for/,
	past_max => qr/returned a end_id that is not a bigint/,
	not_int  => qr/returned a start_id that is not a bigint/,
	null_start => qr/returned a NULL start_id/,
	null_end => qr/returned a NULL end_id/,
	no_row   => qr/returned 0 rows instead of 1/,
	two_rows => qr/returned 2 rows instead of 1/,);
for my $mode (qw(wrap reversed empty size past_max not_int null_start null_end no_row two_rows))
{
	stand_in($mode);
	my ($state, $out, $err) = run_as('app', $batch);
	is($state, '08P01', "(a) $mode: refused with 08P01") or diag $err;
	like($err, qr/could not get a block for allocator "w" from its authority \(host=\S+ port=\d+ dbname=bad\)/,
		"(a) $mode: the message names the allocator and the authority");
	like($err, $expect{$mode}, "(a) $mode: the detail says what the authority returned");
	my $next = $src->safe_psql('postgres',
		q{SELECT next_id <= persisted_until AND persisted_until < 10000000 FROM idalloc_allocators WHERE name = 'w'});
	is($next, 't', "(a) $mode: the allocator's next_id and persisted_until are untouched");
	good_again("(a) after $mode");
}

# an error of the authority's with a SQLSTATE of class 00, 01 or 02 (no
# error at all) is a protocol violation, not a success
stand_in('odd_state');
my ($odd) = run_as('app', q{SELECT start_id FROM idalloc_batch('w', 200000)});
is($odd, '08P01', '(a) an authority error with SQLSTATE 01000 is 08P01');
good_again('(a) after the odd SQLSTATE');

# the authority's own error: its SQLSTATE, its words for superusers only
stand_in('error');
# (more than the good answers before may have left held)
my $big = q{SELECT start_id || '|' || end_id FROM idalloc_batch('w', 100000)};
($state, $out, $err) = run_as('app', $big);
is($state, '22023', '(a) the authority\'s error keeps its SQLSTATE');
like($err, qr/the authority \(host=\S+ port=\d+ dbname=bad\) refused a block for allocator "w"/,
	'(a) and says the authority refused a block of w');
like($err, qr/DETAIL:  The authority reported an error \(SQLSTATE 22023\)\./,
	'(c) a non-superuser is told the class of failure');
unlike($err, qr/words-of-the-authority-5521/, '(c) but not the authority\'s own words');
# (the same failure again, raised to a superuser)
($state, $out, $err) = run_as($src->safe_psql('postgres', 'SELECT current_user'), $big);
like($err, qr/words-of-the-authority-5521/, '(c) a superuser sees the authority\'s words');
good_again('(a) after the authority\'s error');
no_repeats($ids, '(a) no ID handed out twice');

# --- (b) backoff ---------------------------------------------------------------------------
stand_in('no_row');
my $t0 = time;
my $calls_made = 0;
while (time - $t0 < 4)
{
	run_as('app', "SET idalloc.source_timeout = '500ms'; $batch");
	$calls_made++;
}
my $asked = $auth->safe_psql('bad', 'SELECT calls FROM public.stand_in');
cmp_ok($asked, '<=', 8,
	"(b) in 4 s of $calls_made failing calls the authority was asked $asked times (backoff from 200 ms, doubling)");
cmp_ok($asked, '>=', 2, '(b) and was asked again (not given up on)');
good_again('(b) after the backoff');

# --- (d) file descriptors ---------------------------------------------------------------------
# Each connection to an authority counts as one of the server process's
# external file descriptors (AcquireExternalFD, as postgres_fdw's do): a
# third of what max_files_per_process leaves.  With 70, the persister can
# hold about 17 connections; 24 sourced allocators, one connection each.
my $fds = idalloc_node('fds', conf => "max_files_per_process = 70\n");
my $fds_conninfo = sprintf('host=%s port=%d dbname=postgres', $auth->host, $auth->port);
$auth->safe_psql('postgres',
	join('', map { "SELECT idalloc_create('f$_', block => 10);" } 1 .. 24));
$fds->safe_psql('postgres',
	join('', map { "SELECT idalloc_create('f$_', block => 10, source => " . sql_literal($fds_conninfo) . ');' } 1 .. 24));
my (%seen, $detail);
for my $i (1 .. 24)
{
	my ($st, $o, $e) = sqlstate_of($fds, "SELECT idalloc_one('f$i')");
	$seen{$st eq '' ? 'ok' : $st}++;
	$detail //= $e if $st eq '08004';
}
my $summary = join(', ', map { "$_: $seen{$_}" } sort keys %seen);
ok($seen{ok} && $seen{'08004'} && keys(%seen) == 2,
	"(d) with no descriptor left, a fetch fails cleanly with 08004 ($summary)");
like($detail // '', qr/too many open files on the local server/, '(d) and says why');
is($fds->safe_psql('postgres', 'SELECT 1'), '1', '(d) the server is up');
unlike(slurp_file($fds->logfile), qr/epoll_create1 failed|terminated by signal/,
	'(d) the persister kept a descriptor for its own wait (it did not fail or die)');
$fds->stop;

$src->stop;
$auth->stop;
done_testing();
