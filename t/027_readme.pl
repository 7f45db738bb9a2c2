# Copyright (c) idalloc authors
#
# The README's snippets are what the tests run (issue 11): every code block
# of README.md preceded by "<!-- snippet: FILE -->" appears, line for line
# and in order, in FILE, which a test runs (clients/python/orders.py by
# t/023, clients/node/orders.js by t/024); the files the README names for
# installing and monitoring exist.
use strict;
use warnings;

use FindBin;
use PostgreSQL::Test::Utils;
use Test::More;

my $repo = "$FindBin::RealBin/..";
my $readme = slurp_file("$repo/README.md");

my $n = 0;
while ($readme =~ /<!-- snippet: (\S+) -->\n```\w*\n(.*?)```\n/sg)
{
	my ($file, $block) = ($1, $2);
	$n++;
	my $src = -f "$repo/$file" ? slurp_file("$repo/$file") : '';
	my ($first) = $block =~ /^\s*(.*\S)/;
	ok(index($src, $block) >= 0, "snippet $n is a copy of $file (" . ($first // '') . ')')
	  or diag "not found in $file:\n$block";
}
cmp_ok($n, '>=', 7, "the README has $n snippets taken from tested files");

for my $file ('monitoring/postgres_exporter-idalloc.yaml', 'META.json', 'debian/pgversions',
	'debian/tests/installcheck', 'bench/scaling.png')
{
	ok(-f "$repo/$file", "the README's $file exists");
	ok(index($readme, $file) >= 0, "and the README names it");
}

done_testing();
