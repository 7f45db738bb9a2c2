# Copyright (c) idalloc authors
#
# The Debian package, as a PostgreSQL user on Debian installs it (issue 11):
# run as root by scripts/test.sh (it installs a package), after every
# other suite.
#
#   (a) "make deb" builds postgresql-15-idalloc_<version>_<arch>.deb (its
#       build runs the regression and isolation suites: dh_pgxs_test);
#   (b) "apt-get install ./<deb>" installs it: the files are the package's
#       (dpkg --verify), it depends on postgresql-15;
#   (c) a cluster made the Debian way (pg_createcluster) with the preload
#       setting added (pg_conftool) has a working extension: CREATE
#       EXTENSION, IDs, a named allocator, the view; without the setting,
#       CREATE EXTENSION fails with idalloc's own message;
#   (d) debian/tests/installcheck (what autopkgtest runs) passes against
#       the installed package;
#   (e) the package is removed again and the working tree's build is
#       installed back ("make install"), as the other suites left it.
use strict;
use warnings;

use FindBin;
use Test::More;

my $repo = "$FindBin::RealBin/../..";
my $make = $ENV{MAKE} // 'make';
my $port = 55441;
my $cluster = 'idalloc_pkg_test';

plan skip_all => 'run as root by scripts/test.sh (installs a package)'
  if $> != 0;

# run a command; returns (exit status, combined output)
sub run
{
	my (@cmd) = @_;
	my $out = `@cmd 2>&1`;
	return ($? >> 8, $out);
}

sub psql
{
	my ($sql) = @_;
	return run('runuser', '-u', 'postgres', '--', 'psql', '-X', '-A', '-t', '-q',
		'-p', $port, '-d', 'postgres', '-c', quotemeta($sql));
}

# (a) the build
my ($rc, $out) = run("cd $repo && $make --no-print-directory deb");
is($rc, 0, '(a) make deb succeeds') or diag $out;
my ($deb) = $out =~ m{^(\S+/postgresql-15-idalloc_[^/\s]+\.deb)$}m;
ok(defined $deb && -f $deb, '(a) it produced ' . ($deb // 'no .deb'));
like($deb // '', qr{/postgresql-15-idalloc_1\.2\.0-1_[a-z0-9]+\.deb$},
	'(a) named postgresql-15-idalloc_<version>_<arch>.deb');
like(`cat $repo/.run/deb/build.log`, qr/All 11 tests passed|All \d+ tests passed/,
	'(a) its build ran pg_buildext installcheck');

# (b) installing it
($rc, $out) = run('DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y',
	'--no-install-recommends', $deb // '/nonexistent');
is($rc, 0, '(b) apt-get install ./<deb> succeeds') or diag $out;
($rc, $out) = run('dpkg-query', '-W', "-f='\${Status} \${Version}'", 'postgresql-15-idalloc');
is($out, 'install ok installed 1.2.0-1', '(b) dpkg lists postgresql-15-idalloc 1.2.0-1 as installed');
($rc, $out) = run('dpkg', '--verify', 'postgresql-15-idalloc');
is("$rc:$out", '0:', '(b) the installed files are the package\'s (dpkg --verify)');
($rc, $out) = run('dpkg', '-L', 'postgresql-15-idalloc');
like($out, qr{^/usr/lib/postgresql/15/lib/idalloc\.so$}m, '(b) it ships idalloc.so');
like($out, qr{^/usr/share/postgresql/15/extension/idalloc\.control$}m, '(b) and the control file');
like($out, qr{^/usr/share/postgresql/15/extension/idalloc--1\.0--1\.1\.sql$}m, '(b) and the update script');
($rc, $out) = run('dpkg-query', '-W', "-f='\${Depends}'", 'postgresql-15-idalloc');
like($out, qr/postgresql-15\b/, '(b) it depends on postgresql-15');

# (c) a cluster the Debian way
run('pg_dropcluster', '--stop', '15', $cluster);    # (a leftover)
($rc, $out) = run('pg_createcluster', '15', $cluster, '--port', $port);
is($rc, 0, '(c) pg_createcluster') or diag $out;
($rc, $out) = run('pg_ctlcluster', '15', $cluster, 'start');
is($rc, 0, '(c) the cluster starts without the preload setting') or diag $out;
($rc, $out) = psql('CREATE EXTENSION idalloc');
like($out, qr/shared_preload_libraries/, '(c) without it, CREATE EXTENSION says to preload the library');
run('pg_ctlcluster', '15', $cluster, 'stop');
($rc, $out) = run('pg_conftool', '15', $cluster, 'set', 'shared_preload_libraries', 'idalloc');
is($rc, 0, '(c) pg_conftool set shared_preload_libraries idalloc') or diag $out;
($rc, $out) = run('pg_ctlcluster', '15', $cluster, 'start');
is($rc, 0, '(c) the cluster starts with the library preloaded') or diag $out;
($rc, $out) = psql(q{CREATE EXTENSION idalloc;
	SELECT idalloc_create('orders', start => 1000);
	SELECT extversion FROM pg_extension WHERE extname = 'idalloc';
	SELECT idalloc_one();
	SELECT idalloc_one('orders');
	SELECT end_id - start_id FROM idalloc_batch('orders', 50);
	SELECT idalloc_one('orders');
	SELECT name || ':' || next_id FROM idalloc_allocators ORDER BY name});
is($out, "\n1.2\n1\n1000\n50\n1051\ndefault:2\norders:1052\n",
	'(c) CREATE EXTENSION idalloc: version 1.2, IDs, a named allocator, a batch, the view')
  or diag $out;
($rc, $out) = run('pg_ctlcluster', '15', $cluster, 'restart');
($rc, $out) = psql(q{SELECT idalloc_one('orders') > 1051});
is($out, "t\n", '(c) after a restart the allocator goes on above what it handed out');
($rc, $out) = run('pg_dropcluster', '--stop', '15', $cluster);
is($rc, 0, '(c) the cluster is dropped') or diag $out;

# (d) the autopkgtest, against the installed package
($rc, $out) = run("cd $repo/.run/deb/idalloc-1.2.0 && debian/tests/installcheck");
is($rc, 0, '(d) debian/tests/installcheck passes against the installed package')
  or diag $out;
like($out, qr/All 11 tests passed/, '(d) the regression suite ran');
like($out, qr/All 14 tests passed/, '(d) the isolation suite ran');

# (e) back to the working tree's build
($rc, $out) = run('DEBIAN_FRONTEND=noninteractive', 'apt-get', 'remove', '-y', '--purge',
	'postgresql-15-idalloc');
is($rc, 0, '(e) the package is removed') or diag $out;
($rc, $out) = run("cd $repo && $make --no-print-directory install");
is($rc, 0, '(e) make install puts the working tree\'s build back') or diag $out;

done_testing();
