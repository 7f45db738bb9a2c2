# Copyright (c) idalloc authors
#
# G1 across rewrites of idalloc's table by another session (issue 8, item
# 5).  pg_repack copies the rows under a snapshot, replays what its trigger
# logged and swaps the files; block advances are in-place writes, which no
# trigger sees, so the swapped-in rows can be behind the IDs handed out
# meanwhile, and an immediate stop would then repeat them.  idalloc raises
# the rows of the new storage to what this server persisted, in the
# swapping transaction, before its commit (persist.c, "Rewrites by another
# session").
#   (a) pg_repack -t idalloc_registry, five times while two sessions
#       allocate from an allocator with block 5 (callers advance in place):
#       each run succeeds and swaps the files; afterwards the row is not
#       behind any ID handed out; an immediate stop and restart repeats
#       nothing;
#   (b) pg_repack -d (every table of the database, ours included) exits 0;
#   (c) the guard still holds: idalloc's triggers cannot be dropped,
#       disabled, renamed or replaced, and a BEFORE trigger cannot be added;
#       a superuser's AFTER trigger (what pg_repack adds) can, but what it
#       writes into the table is refused, also while idalloc's own write
#       fires it;
#   (d) VACUUM FULL and CLUSTER while allocating lose nothing either.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IdallocTest;

# pg_repack of the major under test (its bin directory, as pg_config
# says).  Debian 12 packages it for 15 only (postgresql-15-repack, which
# scripts/setup.sh installs: its absence on 15 is a failure); on the other
# majors the file is skipped, with that reason.
my ($major) = `pg_config --version` =~ /PostgreSQL (\d+)/;
my $bindir = `pg_config --bindir`;
chomp $bindir;
my $pg_repack = $ENV{PG_REPACK} // "$bindir/pg_repack";
if (!-x $pg_repack)
{
	plan skip_all => "pg_repack is packaged for PostgreSQL 15 only (Debian 12's postgresql-15-repack); none for PostgreSQL $major"
	  if defined $major && $major != 15;
	die "pg_repack not found at $pg_repack (scripts/setup.sh installs postgresql-15-repack)";
}

# callers advance blocks themselves (no persister), at the row's block
my $node = idalloc_node('repack',
	conf => "idalloc.persister = off\nidalloc.max_block = 1\n",
	sql => "CREATE EXTENSION pg_repack;
	        SELECT idalloc_create('r', block => 5);
	        CREATE TABLE got (id bigint NOT NULL);
	        CREATE TABLE other (k int PRIMARY KEY, v text);
	        INSERT INTO other SELECT g, 'x' FROM generate_series(1, 100) g;");

sub q1 { return $node->safe_psql('postgres', $_[0]); }

sub repack
{
	my (@args) = @_;
	my ($stdout, $stderr);
	my $ok = IPC::Run::run([ $pg_repack, '-h', $node->host, '-p', $node->port,
		'-d', 'postgres', @args ], '>', \$stdout, '2>', \$stderr);
	return ($ok, $stderr);
}

# two sessions inserting idalloc_one('r') into got, one ID per transaction,
# until stopped (stop_allocating)
my $script = $node->basedir . '/alloc.sql';
PostgreSQL::Test::Utils::append_to_file($script,
	"INSERT INTO got SELECT idalloc_one('r');\n" x 500000);

sub start_allocating
{
	my ($tag) = @_;
	return map
	{
		start_psql_script($node, $script, $node->basedir . "/out_${tag}_$_",
			$node->basedir . "/err_${tag}_$_")
	} 1 .. 2;
}

sub stop_allocating
{
	$_->kill_kill for @_;
	$node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE query LIKE 'INSERT INTO got%'")
	  or die "the allocating sessions did not go";
}

sub row_end { return q1("SELECT persisted_end FROM idalloc_registry WHERE name = 'r'"); }

# --- (a) pg_repack -t while allocating -----------------------------------
# Each round holds pg_repack between its copy and its swap (before it
# swaps, pg_repack waits for every transaction that was open when it took
# its copy: a session keeps one open) while the sessions keep advancing
# blocks in place, then stops the allocation before letting the swap go: the swapped-in copy is behind
# every advance made since it was taken, and nothing advances afterwards
# to write over it.  (The issue's reproduction.)
my $relid = q1("SELECT 'idalloc_registry'::regclass::oid");
my $log_offset = -s $node->logfile;
for my $round (1 .. 5)
{
	my $filenode = q1("SELECT pg_relation_filenode('idalloc_registry')");
	my @h = start_allocating("a$round");
	$node->poll_query_until('postgres', "SELECT count(*) > 200 FROM got")
	  or die "allocation did not start";

	my ($in, $out, $err) = ('', '', '');
	my $blocker = IPC::Run::start(
		[ $node->installed_command('psql'), '-X', '-A', '-t', '-d', $node->connstr('postgres') ],
		'<', \$in, '>', \$out, '2>', \$err);
	$in .= "BEGIN; SELECT 1; \\echo open\n";
	$blocker->pump until $out =~ /open/;

	my ($rout, $rerr) = ('', '');
	my $repack = IPC::Run::start(
		[ $pg_repack, '-h', $node->host, '-p', $node->port, '-d', 'postgres',
		  '-t', 'idalloc_registry' ], '>', \$rout, '2>', \$rerr);
	$node->poll_query_until('postgres',
		"SELECT to_regclass('repack.table_$relid') IS NOT NULL")
	  or die "pg_repack did not copy the table";
	my $at_copy = q1("SELECT max(id) FROM got");
	$node->poll_query_until('postgres', "SELECT max(id) > $at_copy + 100 FROM got")
	  or die "no allocation after the copy";
	stop_allocating(@h);
	my $max = q1("SELECT max(id) FROM got");

	$in .= "COMMIT;\n\\q\n";
	$blocker->finish;
	ok($repack->finish, "(a) round $round: pg_repack -t idalloc_registry succeeds")
	  or diag $rerr;
	isnt(q1("SELECT pg_relation_filenode('idalloc_registry')"), $filenode,
		"(a) round $round: the table has new storage");
	cmp_ok(row_end(), '>', $max,
		"(a) round $round: after the swap the row is past every ID handed out ($max)");
}
like(slurp_file($node->logfile, $log_offset),
	qr/table "idalloc_registry" was rewritten behind in-place block advances; raised allocator/,
	"(a) the swap found the copied row behind and raised it");
my $max = q1("SELECT max(id) FROM got");
$node->stop('immediate');
$node->start;
q1("INSERT INTO got SELECT idalloc_one('r') FROM generate_series(1, 200)");
is(q1("SELECT count(*) - count(DISTINCT id) FROM got"), '0',
	"(a) after an immediate stop and restart, no ID repeats");
cmp_ok(q1("SELECT min(id) FROM got WHERE id > $max"), '>', $max,
	"(a) allocation resumes above the last ID handed out before the stop");

# --- (b) pg_repack of the whole database ---------------------------------
{
	my @h = start_allocating('b');
	my ($ok, $stderr) = repack();
	ok($ok, "(b) pg_repack -d postgres (every table, ours included) succeeds")
	  or diag $stderr;
	like($stderr, qr/repacking table "public\.idalloc_registry"/,
		"(b) it repacked idalloc's table");
	stop_allocating(@h);
	$max = q1("SELECT max(id) FROM got");
	cmp_ok(row_end(), '>', $max, "(b) the row is past every ID handed out");
	is(q1("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'idalloc_registry'::regclass AND tgname = 'repack_trigger'"),
		'0', "(b) pg_repack's trigger is gone again");
}

# --- (c) the guard ----------------------------------------------------------
q1("CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'");
fails_with($node, "DROP TRIGGER idalloc_registry_guard ON idalloc_registry",
	'42501', '(c) DROP TRIGGER of idalloc\'s own');
fails_with($node, "ALTER TABLE idalloc_registry DISABLE TRIGGER idalloc_registry_insert",
	'42501', '(c) DISABLE TRIGGER of idalloc\'s own');
fails_with($node, "ALTER TABLE idalloc_registry DISABLE TRIGGER ALL",
	'42501', '(c) DISABLE TRIGGER ALL');
fails_with($node, "ALTER TABLE idalloc_registry DISABLE TRIGGER USER",
	'42501', '(c) DISABLE TRIGGER USER');
fails_with($node,
	"CREATE TRIGGER t BEFORE INSERT ON idalloc_registry FOR EACH ROW EXECUTE FUNCTION noop()",
	'42501', '(c) a BEFORE trigger');
fails_with($node,
	"CREATE OR REPLACE TRIGGER idalloc_registry_guard AFTER UPDATE ON idalloc_registry FOR EACH ROW EXECUTE FUNCTION noop()",
	'42501', '(c) replacing idalloc\'s trigger');
fails_with($node,
	"CREATE RULE r AS ON INSERT TO idalloc_registry DO INSTEAD NOTHING",
	'42501', '(c) a rule');
is( sqlstate_of($node,
		"CREATE TRIGGER mine AFTER INSERT ON idalloc_registry FOR EACH ROW EXECUTE FUNCTION noop();
		 ALTER TABLE idalloc_registry ENABLE ALWAYS TRIGGER mine;
		 ALTER TABLE idalloc_registry DISABLE TRIGGER mine;
		 DROP TRIGGER mine ON idalloc_registry;"),
	'', '(c) a superuser can add, switch and drop an AFTER trigger of its own');
fails_with($node, "CREATE INDEX ON idalloc_registry ((lower(name)))",
	'42501', '(c) an index on the table (the persister maintains plain indexes only)');
fails_with($node,
	"ALTER TRIGGER idalloc_registry_guard ON idalloc_registry RENAME TO g2",
	'42501', '(c) renaming idalloc\'s trigger (past the name check)');
# an AFTER trigger cannot write the table either, not even while idalloc's
# own write (idalloc_create's INSERT) fires it
q1(q{CREATE FUNCTION lower_it() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN UPDATE idalloc_registry SET persisted_end = 1; RETURN NULL; END $$});
for my $level ('ROW', 'STATEMENT')
{
	q1("CREATE TRIGGER lower_it AFTER INSERT ON idalloc_registry FOR EACH $level EXECUTE FUNCTION lower_it()");
	fails_with($node, "SELECT idalloc_create('lowered_$level')", '42501',
		"(c) an AFTER INSERT FOR EACH $level trigger that updates the table during idalloc_create");
	q1("DROP TRIGGER lower_it ON idalloc_registry");
}
is(q1("SELECT count(*) FROM idalloc_registry WHERE persisted_end = 1 AND name = 'r'"), '0',
	'(c) no row was lowered');
q1("CREATE ROLE alice LOGIN; GRANT ALL ON idalloc_registry TO alice");
fails_with($node,
	"SET ROLE alice; CREATE TRIGGER hers AFTER INSERT ON idalloc_registry FOR EACH ROW EXECUTE FUNCTION noop()",
	'42501', '(c) a non-superuser with TRIGGER privilege cannot add one');
is(q1("SELECT string_agg(tgname || ':' || tgenabled::text, ',' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = 'idalloc_registry'::regclass"),
	'idalloc_registry_guard:A,idalloc_registry_guard_truncate:A,idalloc_registry_insert:A',
	"(c) idalloc's triggers are all there and ENABLE ALWAYS");

# --- (d) PostgreSQL's own rewrites ----------------------------------------
my @h = start_allocating('d');
for my $cmd ('VACUUM FULL idalloc_registry', 'CLUSTER idalloc_registry USING idalloc_registry_pkey')
{
	for (1 .. 3) { q1($cmd); }
}
stop_allocating(@h);
$max = q1("SELECT max(id) FROM got");
cmp_ok(row_end(), '>', $max, "(d) after VACUUM FULL and CLUSTER the row is past every ID handed out");
$node->stop('immediate');
$node->start;
q1("INSERT INTO got SELECT idalloc_one('r') FROM generate_series(1, 200)");
is(q1("SELECT count(*) - count(DISTINCT id) FROM got"), '0',
	"(d) after an immediate stop and restart, no ID repeats");

$node->stop;
done_testing();
