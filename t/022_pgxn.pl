# Copyright (c) idalloc authors
#
# PGXN (issue 11): META.json is valid for PGXN and its versions are the
# control file's.
#
#   (a) META.json parses, and holds what the PGXN Meta Spec 1.0.0 requires,
#       with the types it gives: name, abstract, version (semver),
#       maintainer, license (one the spec names), provides (each with an
#       existing file and a semver version), meta-spec 1.0.0; the optional
#       keys used (description, prereqs, tags, release_status,
#       generated_by) are well formed; no key outside the spec (but x_*);
#   (b) the versions agree: META.json's version and idalloc's provided
#       version are the control file's default_version (as semver: 1.1 ->
#       1.1.0), and so is debian/changelog's upstream version; the file
#       META.json names is that version's install script;
#   (c) "make dist"'s zip is read by Debian's pgxnclient as a PGXN
#       distribution would be: one top-level directory with the Makefile,
#       its META.json found, the version parsed by pgxnclient's SemVer.
use strict;
use warnings;

use FindBin;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;

my $repo = "$FindBin::RealBin/..";
my $semver = qr/^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+)?$/;

my $text = slurp_file("$repo/META.json");
my $meta = eval { JSON::PP->new->utf8->decode($text) };
ok($meta, '(a) META.json is JSON') or diag $@;
$meta //= {};

# (a) required keys
like($meta->{name} // '', qr/^[^\/\\\s]{2,}$/, '(a) name: two or more characters, no slash, backslash or space');
is($meta->{name}, 'idalloc', '(a) name is idalloc');
ok(defined $meta->{abstract} && !ref $meta->{abstract} && length $meta->{abstract},
	'(a) abstract: a non-empty string');
like($meta->{version} // '', $semver, '(a) version is a semantic version');
my @maint = ref $meta->{maintainer} eq 'ARRAY' ? @{ $meta->{maintainer} } : ($meta->{maintainer} // ());
ok(@maint && !grep({ ref $_ || $_ eq '' } @maint), '(a) maintainer: a string or a list of strings');
my %licenses = map { $_ => 1 } qw(agpl_3 apache_1_1 apache_2_0 artistic_1 artistic_2
  bsd freebsd gfdl_1_2 gfdl_1_3 gpl_1 gpl_2 gpl_3 lgpl_2_1 lgpl_3_0 mit
  mozilla_1_0 mozilla_1_1 openssl perl_5 postgresql qpl_1_0 ssleay sun zlib
  open_source restricted unrestricted unknown);
ok(!ref $meta->{license} && $licenses{ $meta->{license} // '' },
	'(a) license is one the spec names (' . ($meta->{license} // 'none') . ')');
like(slurp_file("$repo/LICENSE"), qr/PostgreSQL License/, '(a) and LICENSE is that license');
is(ref $meta->{provides}, 'HASH', '(a) provides: an object');
for my $ext (sort keys %{ $meta->{provides} // {} })
{
	my $p = $meta->{provides}{$ext};
	ok(defined $p->{file} && -f "$repo/$p->{file}", "(a) provides $ext: its file $p->{file} exists");
	like($p->{version} // '', $semver, "(a) provides $ext: version is a semantic version");
	ok(!defined $p->{docfile} || -f "$repo/$p->{docfile}", "(a) provides $ext: its docfile exists");
}
is($meta->{'meta-spec'}{version}, '1.0.0', '(a) meta-spec version 1.0.0');

# (a) optional keys, as the spec has them
my %known = map { $_ => 1 } qw(name abstract description version maintainer license
  provides meta-spec prereqs tags release_status resources no_index generated_by);
my @unknown = grep { !$known{$_} && !/^[xX]_/ } sort keys %$meta;
is("@unknown", '', '(a) no key outside the spec');
like($meta->{release_status} // 'stable', qr/^(stable|testing|unstable)$/, '(a) release_status');
ok(!defined $meta->{tags} || (ref $meta->{tags} eq 'ARRAY' && !grep { ref $_ || length $_ > 255 } @{ $meta->{tags} }),
	'(a) tags: a list of strings');
my $prereqs_ok = 1;
for my $phase (keys %{ $meta->{prereqs} // {} })
{
	$prereqs_ok = 0 unless $phase =~ /^(configure|build|test|runtime|develop)$/;
	for my $rel (keys %{ $meta->{prereqs}{$phase} })
	{
		$prereqs_ok = 0 unless $rel =~ /^(requires|recommends|suggests|conflicts)$/;
		for my $v (values %{ $meta->{prereqs}{$phase}{$rel} })
		{
			$prereqs_ok = 0 unless $v =~ /^(0|(>=|<=|==|!=|>|<)?\s*\d+(\.\d+){0,2}([-\w.]*)?)$/;
		}
	}
}
ok($prereqs_ok, '(a) prereqs: phases, relations and versions as the spec has them');
is($meta->{prereqs}{runtime}{requires}{PostgreSQL}, '>= 15.0.0', '(a) it requires PostgreSQL 15 or later');

# (b) one version everywhere
my ($control) = slurp_file("$repo/idalloc.control") =~ /^default_version\s*=\s*'([^']+)'/m;
my $as_semver = $control =~ /^\d+\.\d+$/ ? "$control.0" : $control;
is($meta->{version}, $as_semver, "(b) META.json's version is the control file's default_version ($control)");
is($meta->{provides}{idalloc}{version}, $as_semver, '(b) and so is the provided extension\'s');
is($meta->{provides}{idalloc}{file}, "idalloc--$control.sql", '(b) its file is that version\'s install script');
my ($deb) = slurp_file("$repo/debian/changelog") =~ /^idalloc \(([^)]+)\)/;
(my $upstream = $deb // '') =~ s/-[^-]+$//;
is($upstream, $as_semver, "(b) debian/changelog's upstream version ($deb) is the same");

# (c) the release zip, read by pgxnclient
my $dir = PostgreSQL::Test::Utils::tempdir;
my $zip = `bash $repo/scripts/dist.sh $dir 2>&1`;
chomp $zip;
ok(-f $zip, "(c) make dist wrote $zip");
my $py = <<'PY';
import sys, zipfile
from pgxnclient import archive
from pgxnclient.utils.semver import SemVer
arc = archive.from_file(sys.argv[1])
meta = arc.get_meta()
names = zipfile.ZipFile(sys.argv[1]).namelist()
tops = sorted({n.split('/')[0] for n in names})
print(meta['name'], SemVer(meta['version']), ','.join(tops),
      tops[0] + '/Makefile' in names, tops[0] + '/META.json' in names)
PY
IPC::Run::run([ '/usr/bin/python3', '-c', $py, $zip ], '>', \my $got, '2>&1');
is($got, "idalloc $as_semver idalloc-$as_semver True True\n",
	'(c) pgxnclient reads the zip: its META.json, a semver version, one top-level directory with the Makefile');

done_testing();
