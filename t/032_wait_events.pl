# Copyright (c) idalloc authors
#
# idalloc's waits in pg_stat_activity (issue 18): on 17 and later, custom
# wait events of their own (WaitEventExtensionNew, src/compat.h); on 15,
# PostgreSQL's generic "Extension".  A sourced server whose authority does
# not answer (its idalloc_batch waits for a lock there):
#
#   (a) the caller that waits for a block shows wait_event IdallocBlock;
#   (b) the persister, waiting on the fetch's socket, shows
#       IdallocSourceFetch;
#   (c) once the authority answers, the idle persister shows
#       IdallocPersister;
#   all with wait_event_type Extension.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use IdallocTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my ($major) = `pg_config --version` =~ /PostgreSQL (\d+)/;
my %want = $major >= 17
  ? (block => 'IdallocBlock', fetch => 'IdallocSourceFetch', idle => 'IdallocPersister')
  : (block => 'Extension', fetch => 'Extension', idle => 'Extension');

my $auth = idalloc_node('authority', sql => q{SELECT idalloc_create('slow', block => 1)});
my $src = idalloc_node('sourced', conf => "idalloc.source_timeout = '60s'\n");
my $ci = sprintf('host=%s port=%d dbname=postgres', $auth->host, $auth->port);
$src->safe_psql('postgres', "SELECT idalloc_create('slow', source => " . sql_literal($ci) . ')');
$src->safe_psql('postgres', q{SELECT idalloc_one('slow')});

# the authority's idalloc_batch waits for this lock: every fetch hangs
my $lock = $auth->background_psql('postgres');
$lock->query_safe('BEGIN');
$lock->query_safe('LOCK TABLE idalloc_registry IN ACCESS EXCLUSIVE MODE');

# a caller that needs a fetch (a batch larger than what is held)
my $caller = $src->background_psql('postgres');
$caller->query_until(qr/started/, q{\echo started
SELECT count(*) FROM idalloc_batch('slow', 300000);
});

my $wait_of = sub {
	my ($where) = @_;
	return $src->safe_psql('postgres',
		"SELECT wait_event_type || ':' || wait_event FROM pg_stat_activity WHERE $where");
};
ok($src->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity
		   WHERE query LIKE '%idalloc_batch(''slow''%' AND wait_event IS NOT NULL
		     AND state = 'active' AND pid <> pg_backend_pid()}),
	'the caller is waiting');
is($wait_of->(q{query LIKE '%idalloc_batch(''slow''%' AND pid <> pg_backend_pid() AND state = 'active'}),
	"Extension:$want{block}", "(a) the waiting caller shows $want{block} (PostgreSQL $major)");
ok($src->poll_query_until('postgres',
		"SELECT wait_event = '$want{fetch}' FROM pg_stat_activity WHERE backend_type = 'idalloc persister'"),
	"(b) the persister waiting on the authority shows $want{fetch}")
  or diag $wait_of->(q{backend_type = 'idalloc persister'});

$lock->query_safe('COMMIT');
$lock->quit;
$caller->quit;
ok($src->poll_query_until('postgres',
		"SELECT wait_event = '$want{idle}' FROM pg_stat_activity WHERE backend_type = 'idalloc persister'"),
	"(c) the idle persister shows $want{idle}")
  or diag $wait_of->(q{backend_type = 'idalloc persister'});
is($src->safe_psql('postgres',
		q{SELECT DISTINCT wait_event_type FROM pg_stat_activity WHERE backend_type = 'idalloc persister'}),
	'Extension', '(c) of type Extension');

$src->stop;
$auth->stop;
done_testing();
