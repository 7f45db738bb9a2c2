# Copyright (c) idalloc authors
#
# PGXN (issue 11), run as root by scripts/test.sh: "make dist"'s release
# zip installs with Debian's pgxnclient ("pgxn install ./idalloc-<v>.zip"
# builds it with PGXS and installs it), and the installed files are that
# release's; then the working tree's build is installed back.
use strict;
use warnings;

use File::Temp qw(tempdir);
use FindBin;
use Test::More;

my $repo = "$FindBin::RealBin/../..";
my $make = $ENV{MAKE} // 'make';
my $pg_config = '/usr/lib/postgresql/15/bin/pg_config';

plan skip_all => 'run as root by scripts/test.sh (installs files)' if $> != 0;

sub run
{
	my ($cmd) = @_;
	my $out = `$cmd 2>&1`;
	return ($? >> 8, $out);
}

my $dir = tempdir(CLEANUP => 1);
my ($rc, $zip) = run("bash $repo/scripts/dist.sh $dir");
chomp $zip;
is($rc, 0, 'make dist wrote the release zip') or diag $zip;

my $lib = `$pg_config --pkglibdir`;
chomp $lib;
unlink "$lib/idalloc.so";
my ($out);
($rc, $out) = run("cd $dir && pgxn install --make make --pg_config $pg_config ./" . ($zip =~ s{.*/}{}r));
is($rc, 0, 'pgxn install ./idalloc-<version>.zip succeeds') or diag $out;
like($out, qr/INFO: (building|installing) extension/i, 'pgxnclient built and installed it');
ok(-f "$lib/idalloc.so", 'idalloc.so is installed again, by pgxn');
my $share = `$pg_config --sharedir`;
chomp $share;
ok(-f "$share/extension/idalloc--1.1--1.2.sql", 'and the update scripts');

($rc, $out) = run("cd $repo && $make --no-print-directory install");
is($rc, 0, 'make install puts the working tree\'s build back') or diag $out;

done_testing();
