# Copyright (c) idalloc authors
#
# The catalog table idalloc_registry and its triggers cannot be turned
# against idalloc (issue 7, defects 1 and 3; SPEC: Errors, G1, G6).
#
#   (a) trigger functions: idalloc_registry_insert() and
#       idalloc_registry_guard() are not executable by PUBLIC, so a
#       non-superuser cannot attach them to a look-alike table of its own
#       (a temp table, or a table in its own schema): CREATE TRIGGER fails
#       with 42501 and the real `default` is untouched.
#   (b) a superuser who attaches the real trigger function to a look-alike
#       (temp table; table of the same name in a schema first in
#       search_path) and COPYs a `default` row into it gets an ERROR (not
#       XX000); the real row, the view and later IDs are unchanged.  With a
#       non-text 6th column (name int) the server does not crash.
#   (c) session_replication_role = replica does not bypass the guards:
#       UPDATE, DELETE, TRUNCATE and INSERT on the real table fail with
#       42501, the row is unchanged, and IDs do not repeat after an
#       immediate stop.
#   (d) the three triggers fire in every role (ENABLE ALWAYS) and even a
#       superuser cannot disable them, switch their mode or drop one.
#   (e) a non-superuser can read the table and cannot write it.
#
# Each part works in its own database, so that a defect shown by one part
# does not hide the next one's.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdallocTest qw(idalloc_node lines);

my $node = idalloc_node('security', conf => "restart_after_crash = on\n");

my $registry_cols =
  'id bigint, start bigint, block bigint, persisted_end bigint, cache int, '
  . 'name text, kind text, source text';
# same columns, but the 6th (name) is not text
my $registry_cols_int =
  'id bigint, start bigint, block bigint, persisted_end bigint, cache int, '
  . 'name int, kind text, source text';
# COPY data of a forged `default` row: block 5, cache 7, end near 2^63
my $forged_row = "1\t1\t5\t9223372036854775000\t7\tdefault\tcounter\t\\N\n\\.\n";
my $forged_row_int = "1\t1\t5\t9223372036854775000\t7\t12345\tcounter\t\\N\n\\.\n";

# Run $sql in $db as $user (undef: the bootstrap superuser), stopping at
# the first error.  Returns the SQLSTATE of that error ('' on success),
# and in list context stdout and stderr as well.
sub state_as
{
	my ($db, $user, $sql) = @_;
	my ($stdout, $stderr);
	my @extra = ('-v', 'VERBOSITY=verbose');
	push @extra, '-U', $user if defined $user;
	my $ret = $node->psql(
		$db, $sql,
		stdout => \$stdout,
		stderr => \$stderr,
		on_error_stop => 1,
		extra_params => \@extra);
	my $state = '';
	if ($ret != 0)
	{
		$state =
		  $stderr =~ /(?:ERROR|FATAL|PANIC):\s+([0-9A-Z]{5}):/ ? $1 : 'unknown';
	}
	return wantarray ? ($state, $stdout, $stderr) : $state;
}

# The real `default`: its row and its line in the view.
sub default_state
{
	my ($db) = @_;
	my $row = $node->safe_psql($db,
		q{SELECT id, start, block, persisted_end, cache, name, kind, source
		    FROM public.idalloc_registry WHERE name = 'default'});
	my $view = $node->safe_psql($db,
		q{SELECT * FROM public.idalloc_allocators WHERE name = 'default'});
	return "row: $row\nview: $view";
}

# A long-lived session: if the server crash-restarts, it is gone.
my $watch = $node->background_psql('postgres');
my $watch_pid = $watch->query_safe('SELECT pg_backend_pid()');
my $start_time = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');

# The server is still the one that was started: a new connection works,
# the postmaster start time is the same, the watch session is alive and
# the log shows no crashed backend since $log_offset.  (A crash-restart
# keeps pg_postmaster_start_time: the watch session and the log are what
# catch it.)
sub server_stayed_up
{
	my ($tag, $log_offset) = @_;
	my $ok = $node->poll_query_until('postgres', 'SELECT true');
	ok($ok, "$tag: a new connection works");
	is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'),
		$start_time, "$tag: pg_postmaster_start_time unchanged");
	is( $node->safe_psql('postgres',
			"SELECT count(*) FROM pg_stat_activity WHERE pid = $watch_pid"),
		'1', "$tag: a session opened before is still alive (no crash-restart)");
	my $log = slurp_file($node->logfile, $log_offset);
	unlike($log,
		qr/terminated by signal|all server processes terminated; reinitializing/,
		"$tag: the log shows no crashed server process");
	renew_watch();
	return;
}

# A new watch session if the old one is gone (so that one crash does not
# fail the checks that follow it).
sub renew_watch
{
	return
	  if $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE pid = $watch_pid") eq '1';
	eval { $watch->quit; };
	$watch = $node->background_psql('postgres');
	$watch_pid = $watch->query_safe('SELECT pg_backend_pid()');
	return;
}

$node->safe_psql(
	'postgres', q{
	CREATE ROLE mallory LOGIN;
	CREATE SCHEMA mallory AUTHORIZATION mallory;
	GRANT TEMPORARY ON DATABASE postgres TO mallory;
});

############################################################################
# (a) a non-superuser cannot attach idalloc's trigger functions
for my $fn (qw(idalloc_registry_insert idalloc_registry_guard))
{
	is( $node->safe_psql('postgres',
			"SELECT has_function_privilege('mallory', 'public.$fn()', 'EXECUTE')"),
		'f', "(a) mallory cannot execute $fn()");
	is( $node->safe_psql(
			'postgres', qq{
			SELECT count(*)
			  FROM pg_proc p,
			       aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
			 WHERE p.oid = 'public.$fn()'::regprocedure
			   AND a.grantee = 0 AND a.privilege_type = 'EXECUTE'}),
		'0', "(a) PUBLIC has no EXECUTE on $fn()");
}

$node->safe_psql('postgres', 'SELECT idalloc_one() FROM generate_series(1, 5)');
my $before = default_state('postgres');
my $log_offset = -s $node->logfile;

my ($state, $out, $err) = state_as(
	'postgres', 'mallory', qq{
CREATE TEMP TABLE idalloc_registry ($registry_cols);
CREATE TRIGGER t BEFORE INSERT ON idalloc_registry
    FOR EACH ROW EXECUTE FUNCTION public.idalloc_registry_insert();
COPY idalloc_registry FROM STDIN;
$forged_row});
is($state, '42501',
	'(a) mallory: CREATE TRIGGER on a temp look-alike with idalloc_registry_insert() fails with 42501'
) or diag $err;
is(default_state('postgres'), $before,
	'(a) after the temp look-alike attack the real default (row and view) is unchanged');

($state, $out, $err) = state_as(
	'postgres', 'mallory', qq{
CREATE TABLE mallory.idalloc_registry ($registry_cols);
CREATE TRIGGER t BEFORE INSERT ON mallory.idalloc_registry
    FOR EACH ROW EXECUTE FUNCTION public.idalloc_registry_insert();
SET search_path = mallory, public;
COPY idalloc_registry FROM STDIN;
$forged_row});
is($state, '42501',
	'(a) mallory: CREATE TRIGGER on a look-alike in its own schema fails with 42501'
) or diag $err;
is(default_state('postgres'), $before,
	'(a) after the own-schema look-alike attack the real default is unchanged');

($state, $out, $err) = state_as(
	'postgres', 'mallory', qq{
CREATE TEMP TABLE lookalike_guard ($registry_cols);
CREATE TRIGGER g BEFORE UPDATE OR DELETE ON lookalike_guard
    FOR EACH ROW EXECUTE FUNCTION public.idalloc_registry_guard();});
is($state, '42501',
	'(a) mallory: CREATE TRIGGER with idalloc_registry_guard() fails with 42501')
  or diag $err;

# the crash variant (non-text name), as the non-superuser
($state, $out, $err) = state_as(
	'postgres', 'mallory', qq{
CREATE TEMP TABLE idalloc_registry ($registry_cols_int);
CREATE TRIGGER t BEFORE INSERT ON idalloc_registry
    FOR EACH ROW EXECUTE FUNCTION public.idalloc_registry_insert();
COPY idalloc_registry FROM STDIN;
$forged_row_int});
is($state, '42501',
	'(a) mallory: CREATE TRIGGER on a look-alike with name int fails with 42501')
  or diag $err;
server_stayed_up('(a) after the non-superuser attacks', $log_offset);

my $first = $node->safe_psql('postgres', 'SELECT idalloc_one()');
cmp_ok($first, '<', 1000000,
	"(a) idalloc_one() continues with small numbers ($first)");

############################################################################
# (b) a superuser attaches the real function to look-alikes; each attack
# in a database of its own

my @attacks = (
	[
		'temp table',
		qq{
CREATE TEMP TABLE idalloc_registry ($registry_cols);
CREATE TRIGGER t BEFORE INSERT ON idalloc_registry
    FOR EACH ROW EXECUTE FUNCTION public.idalloc_registry_insert();
COPY idalloc_registry FROM STDIN;
$forged_row}
	],
	[
		'table in a schema first in search_path',
		qq{
CREATE SCHEMA IF NOT EXISTS evil;
CREATE TABLE evil.idalloc_registry ($registry_cols);
CREATE TRIGGER t BEFORE INSERT ON evil.idalloc_registry
    FOR EACH ROW EXECUTE FUNCTION public.idalloc_registry_insert();
SET search_path = evil, public;
COPY idalloc_registry FROM STDIN;
$forged_row}
	],
	[
		'schema-qualified COPY into a look-alike',
		qq{
CREATE SCHEMA IF NOT EXISTS evil2;
CREATE TABLE evil2.idalloc_registry ($registry_cols);
CREATE TRIGGER t BEFORE INSERT ON evil2.idalloc_registry
    FOR EACH ROW EXECUTE FUNCTION public.idalloc_registry_insert();
COPY evil2.idalloc_registry FROM STDIN;
$forged_row}
	],
	[
		'INSERT into a temp look-alike',
		qq{
CREATE TEMP TABLE idalloc_registry ($registry_cols);
CREATE TRIGGER t BEFORE INSERT ON idalloc_registry
    FOR EACH ROW EXECUTE FUNCTION public.idalloc_registry_insert();
INSERT INTO idalloc_registry
    VALUES (1, 1, 5, 9223372036854775000, 7, 'default', 'counter', NULL);}
	],
	# last: on 1.0 this one takes the server down
	[
		'temp table with a non-text name column',
		qq{
CREATE TEMP TABLE idalloc_registry ($registry_cols_int);
CREATE TRIGGER t BEFORE INSERT ON idalloc_registry
    FOR EACH ROW EXECUTE FUNCTION public.idalloc_registry_insert();
COPY idalloc_registry FROM STDIN;
$forged_row_int}
	],);

my $n = 0;
for my $attack (@attacks)
{
	my ($what, $sql) = @$attack;
	my $db = 'attack' . ++$n;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION idalloc');
	$node->safe_psql($db, 'SELECT idalloc_one() FROM generate_series(1, 7)');
	$before = default_state($db);
	$log_offset = -s $node->logfile;
	($state, $out, $err) = state_as($db, undef, $sql);
	isnt($state, '', "(b) superuser, $what: the forged default row is refused")
	  or diag $err;
	ok($state =~ /^[0-9A-Z]{5}$/ && $state ne 'XX000',
		"(b) superuser, $what: a specific SQLSTATE (not XX000, not a lost connection; got '$state')")
	  or diag $err;
	server_stayed_up("(b) $what", $log_offset);
	is(default_state($db), $before,
		"(b) superuser, $what: the real default (row and view) is unchanged");
	$first = $node->safe_psql($db, 'SELECT idalloc_one()');
	is($first, 8, "(b) superuser, $what: idalloc_one() continues at 8");
}

############################################################################
# (c) session_replication_role = replica bypasses nothing
$node->safe_psql('postgres', 'CREATE DATABASE replica');
$node->safe_psql('replica', 'CREATE EXTENSION idalloc');
my $ids = IdallocTest::IdSet->new;
$ids->add_ids('default', 'c/before',
	lines($node->safe_psql('replica', 'SELECT idalloc_one() FROM generate_series(1, 20)')));
my $row_sql = q{SELECT id, start, block, persisted_end, cache, name, kind, source
                  FROM public.idalloc_registry ORDER BY id};
my $rows_before = $node->safe_psql('replica', $row_sql);

my @replica_writes = (
	[ 'UPDATE', 'UPDATE public.idalloc_registry SET persisted_end = 1' ],
	[
		'INSERT',
		q{INSERT INTO public.idalloc_registry (id, start, block, persisted_end, cache, name, kind)
		  VALUES (1000, 1, 10, 1, 1, 'intruder', 'counter')}
	],
	[ 'DELETE',   'DELETE FROM public.idalloc_registry' ],
	[ 'TRUNCATE', 'TRUNCATE public.idalloc_registry' ],);
for my $w (@replica_writes)
{
	my ($what, $sql) = @$w;
	# UPDATE and INSERT commit if they get through (that is the defect:
	# the next crash shows it); DELETE and TRUNCATE are rolled back, so
	# that the rest of the file still has a registry to work with.
	my $txn =
	  $what =~ /^(UPDATE|INSERT)$/
	  ? "SET session_replication_role = replica;\n$sql;"
	  : "BEGIN;\nSET LOCAL session_replication_role = replica;\n$sql;\nROLLBACK;";
	($state, $out, $err) = state_as('replica', undef, $txn);
	is($state, '42501',
		"(c) superuser, session_replication_role = replica: $what fails with 42501")
	  or diag $err;
}
is($node->safe_psql('replica', $row_sql),
	$rows_before, '(c) the registry rows are unchanged');

$ids->add_ids('default', 'c/after',
	lines($node->safe_psql('replica', 'SELECT idalloc_one() FROM generate_series(1, 20)')));
eval { $watch->quit; };
$node->stop('immediate');
$node->start;
$start_time = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');
$watch = $node->background_psql('postgres');
$watch_pid = $watch->query_safe('SELECT pg_backend_pid()');

my @after = lines($node->safe_psql('replica', 'SELECT idalloc_one() FROM generate_series(1, 20)'));
cmp_ok($after[0], '>', $ids->max('default'),
	'(c) after an immediate restart, the first ID is above every ID before');
$ids->add_ids('default', 'c/restarted', @after);
is(join("\n", $ids->repeats), '', '(c) no ID handed out twice');

############################################################################
# (d) the triggers fire in every role, and stay that way
$node->safe_psql('postgres', 'CREATE DATABASE ddl');
$node->safe_psql('ddl', 'CREATE EXTENSION idalloc');
my $triggers_sql = q{SELECT tgname, tgenabled FROM pg_trigger
                      WHERE tgrelid = 'public.idalloc_registry'::regclass
                        AND NOT tgisinternal ORDER BY tgname};
is( $node->safe_psql('ddl', $triggers_sql),
	join("\n",
		'idalloc_registry_guard|A', 'idalloc_registry_guard_truncate|A',
		'idalloc_registry_insert|A'),
	'(d) the three triggers of idalloc_registry are ENABLE ALWAYS');

for my $alter (
	'DISABLE TRIGGER ALL',
	'DISABLE TRIGGER USER',
	'DISABLE TRIGGER idalloc_registry_guard',
	'DISABLE TRIGGER idalloc_registry_insert',
	'ENABLE REPLICA TRIGGER idalloc_registry_guard',
	'ENABLE TRIGGER idalloc_registry_guard_truncate')
{
	# rolled back in case it gets through
	($state, $out, $err) = state_as('ddl', undef,
		"BEGIN;\nALTER TABLE public.idalloc_registry $alter;\nROLLBACK;");
	is($state, '42501', "(d) superuser: ALTER TABLE idalloc_registry $alter fails with 42501")
	  or diag $err;
}
is($node->safe_psql('ddl', $triggers_sql),
	join("\n",
		'idalloc_registry_guard|A', 'idalloc_registry_guard_truncate|A',
		'idalloc_registry_insert|A'),
	'(d) the triggers are still there, ENABLE ALWAYS');

############################################################################
# (e) a non-superuser reads, never writes
is(state_as('postgres', 'mallory', 'SELECT count(*) FROM public.idalloc_registry'),
	'', '(e) mallory can read idalloc_registry');
is(state_as('postgres', 'mallory', 'SELECT count(*) FROM public.idalloc_allocators'),
	'', '(e) mallory can read idalloc_allocators');
$before = default_state('postgres');
for my $w (
	[ 'INSERT',
		q{INSERT INTO public.idalloc_registry (start, block, persisted_end, cache, name, kind)
		  VALUES (1, 10, 1, 1, 'intruder', 'counter')} ],
	[ 'UPDATE',   'UPDATE public.idalloc_registry SET persisted_end = 1' ],
	[ 'DELETE',   'DELETE FROM public.idalloc_registry' ],
	[ 'TRUNCATE', 'TRUNCATE public.idalloc_registry' ],
	[ 'COPY FROM', "COPY public.idalloc_registry FROM STDIN;\n$forged_row" ],
	[ 'SET session_replication_role', 'SET session_replication_role = replica' ])
{
	my ($what, $sql) = @$w;
	($state, $out, $err) = state_as('postgres', 'mallory', $sql);
	is($state, '42501', "(e) mallory: $what fails with 42501") or diag $err;
}
is(default_state('postgres'), $before, '(e) the real default is unchanged');

############################################################################
# (d, last because on 1.0 it succeeds and removes the guard) DROP TRIGGER
($state, $out, $err) = state_as('ddl', undef,
	'DROP TRIGGER idalloc_registry_guard ON public.idalloc_registry');
ok($state eq '42501' || $state eq '2BP01',
	"(d) superuser: DROP TRIGGER idalloc_registry_guard fails (42501 or 2BP01; got '$state')")
  or diag $err;
is( $node->safe_psql('ddl',
		q{SELECT count(*) FROM pg_trigger
		   WHERE tgrelid = 'public.idalloc_registry'::regclass
		     AND tgname = 'idalloc_registry_guard'}),
	'1', '(d) idalloc_registry_guard is still there');

$watch->quit;
$node->stop;
done_testing();
