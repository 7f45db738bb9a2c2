# Copyright (c) idalloc authors
#
# Monitoring (issue 11): Debian's prometheus-postgres-exporter, run with
# monitoring/postgres_exporter-idalloc.yaml against a throwaway cluster as
# a non-superuser role, exposes per allocator on its /metrics page: the
# next ID, the persisted window, IDs handed out, block advances, waits,
# the step, cached ranges, whether it is sourced and the fraction of the
# 64-bit space used, with the values of idalloc_allocators, and follows
# them from one scrape to the next.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use IdallocTest;
use HTTP::Tiny;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $queries = "$FindBin::RealBin/../monitoring/postgres_exporter-idalloc.yaml";
my $node = idalloc_node('exporter', sql => q{
	SELECT idalloc_create('orders', start => 1000, block => 100);
	SELECT idalloc_create('events', kind => 'tso');
	SELECT idalloc_create('cached', cache => 20);
	SELECT count(idalloc_one('orders')) FROM generate_series(1, 250);
	SELECT idalloc_one('events');
	CREATE ROLE exporter LOGIN;
	GRANT pg_monitor TO exporter;});

my $port = PostgreSQL::Test::Cluster::get_free_port();
my $dsn = 'host=' . $node->host . ' port=' . $node->port . ' user=exporter dbname=postgres sslmode=disable';
my $exporter = IPC::Run::start(
	[ 'env', "DATA_SOURCE_NAME=$dsn", 'prometheus-postgres-exporter',
	  "--web.listen-address=127.0.0.1:$port", "--extend.query-path=$queries",
	  '--log.level=warn' ],
	'>', \my $eout, '2>', \my $eerr);

my $http = HTTP::Tiny->new(timeout => 10);
sub scrape
{
	for (1 .. 100)
	{
		my $r = $http->get("http://127.0.0.1:$port/metrics");
		return $r->{content} if $r->{success} && $r->{content} =~ /^idalloc_allocator_next_id/m;
		select(undef, undef, undef, 0.2);
	}
	return '';
}

# the value of metric $m for allocator $a
sub metric
{
	my ($page, $m, $a) = @_;
	my ($v) = $page =~ /^idalloc_allocator_\Q$m\E\{[^}]*allocator="\Q$a\E"[^}]*\} (\S+)$/m;
	return $v;
}

my $page = scrape();
ok($page ne '', 'the exporter serves idalloc_allocator_* metrics') or diag $eerr;
for my $m (qw(next_id persisted_until allocated block_advances waits step cached_ranges sourced space_used_ratio))
{
	ok(defined metric($page, $m, 'orders'), "idalloc_allocator_$m is there for allocator \"orders\"");
}
like($page, qr/^# TYPE idalloc_allocator_allocated counter$/m, 'allocated is a counter');
like($page, qr/^# TYPE idalloc_allocator_next_id gauge$/m, 'next_id is a gauge');
like($page, qr/^idalloc_allocator_next_id\{[^}]*kind="tso"[^}]*\}/m, 'tso allocators too, labelled with their kind');

my %view;
for my $line (lines($node->safe_psql('postgres',
	q{SELECT name, next_id, persisted_until, allocated, block_advances, waits, step
	    FROM idalloc_allocators WHERE name = 'orders'})))
{
	my @f = split /\|/, $line;
	@view{qw(name next_id persisted_until allocated block_advances waits step)} = @f;
}
for my $m (qw(next_id persisted_until allocated block_advances waits step))
{
	cmp_ok(metric($page, $m, 'orders'), '==', $view{$m}, "$m is the view's ($view{$m})");
}
cmp_ok(abs(metric($page, 'space_used_ratio', 'orders') - $view{next_id} / 9223372036854775806), '<', 1e-15,
	'space_used_ratio is next_id / (2^63 - 2)');
my $tso_next = $node->safe_psql('postgres', q{SELECT next_id FROM idalloc_allocators WHERE name = 'events'});
cmp_ok(abs(metric($page, 'space_used_ratio', 'events') / ($tso_next / 9223372036854775806) - 1), '<', 1e-3,
	'and for a tso allocator, whose IDs start at milliseconds << 18 (about 5% of the space)');

# the next scrape follows
$node->safe_psql('postgres', q{SELECT count(idalloc_one('orders')) FROM generate_series(1, 500)});
$page = scrape();
cmp_ok(metric($page, 'allocated', 'orders'), '==', $view{allocated} + 500, 'allocated grew by the 500 IDs taken since');
cmp_ok(metric($page, 'next_id', 'orders'), '==', $view{next_id} + 500, 'next_id moved on by 500');
cmp_ok(metric($page, 'block_advances', 'orders'), '>', $view{block_advances}, 'block_advances grew');

$exporter->kill_kill;
$node->stop;
done_testing();
