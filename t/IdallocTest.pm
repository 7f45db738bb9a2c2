# Copyright (c) idalloc authors
#
# Shared helpers of idalloc's TAP tests (t/*.pl).  One place for them:
# a test file does "use lib 't'; use IdallocTest;" (scripts/test.sh also
# passes -I t to prove).
#
#   idalloc_node($name, %opt)     a started PostgreSQL::Test::Cluster with
#                                 idalloc preloaded (and, unless
#                                 no_extension => 1, CREATE EXTENSION done)
#   lines($out)                   non-empty lines of psql output
#   sqlstate_of($node, $sql, %o)  run $sql; '' on success, else the SQLSTATE
#                                 of the first error (o: dbname)
#   fails_with($node, $sql, $sqlstate, $name, %o)
#                                 two assertions: it fails, with that SQLSTATE
#   IdallocTest::IdSet            every ID handed out, as half-open ranges
#                                 per allocator; finds IDs handed out twice
#                                 without expanding the ranges
package IdallocTest;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(idalloc_node lines sqlstate_of fails_with);

# A started node with shared_preload_libraries = 'idalloc'.
#   init => {...}        passed to $node->init (allows_streaming => 1, ...)
#   conf => "..."        more postgresql.conf lines
#   no_start => 1        do not start it
#   no_extension => 1    do not CREATE EXTENSION idalloc in "postgres"
sub idalloc_node
{
	my ($name, %opt) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%{ $opt{init} // {} });
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'idalloc'\n" . ($opt{conf} // ''));
	return $node if $opt{no_start};
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION idalloc')
	  unless $opt{no_extension};
	return $node;
}

sub lines
{
	my ($out) = @_;
	return grep { $_ ne '' } split /\n/, ($out // '');
}

# Run $sql with verbose errors: '' if it succeeded, else the SQLSTATE of
# the first ERROR (or 'unknown' if psql failed without one).  In list
# context also returns stdout and stderr.
sub sqlstate_of
{
	my ($node, $sql, %opt) = @_;
	my ($stdout, $stderr);
	my $ret = $node->psql(
		$opt{dbname} // 'postgres', $sql,
		stdout => \$stdout,
		stderr => \$stderr,
		on_error_stop => 1,
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	my $state = '';
	if ($ret != 0)
	{
		$state = $stderr =~ /(?:ERROR|FATAL|PANIC):\s+([0-9A-Z]{5}):/ ? $1 : 'unknown';
	}
	return wantarray ? ($state, $stdout, $stderr) : $state;
}

sub fails_with
{
	my ($node, $sql, $sqlstate, $name, %opt) = @_;
	my ($state, $stdout, $stderr) = sqlstate_of($node, $sql, %opt);
	isnt($state, '', "$name: fails");
	is($state, $sqlstate, "$name: SQLSTATE $sqlstate") or diag $stderr;
	return $stderr;
}

package IdallocTest::IdSet;

use strict;
use warnings;

sub new
{
	my ($class) = @_;
	return bless { ranges => {}, count => {} }, $class;
}

# Record [start, end) of allocator $alloc, handed out at $where.
sub add_range
{
	my ($self, $alloc, $where, $start, $end) = @_;
	die "bad range [$start, $end) ($where)"
	  unless $start =~ /^-?\d+$/ && $end =~ /^-?\d+$/ && $end > $start;
	push @{ $self->{ranges}{$alloc} }, [ $start, $end, $where ];
	$self->{count}{$alloc} += $end - $start;
	return;
}

sub add_ids
{
	my ($self, $alloc, $where, @ids) = @_;
	for my $id (@ids)
	{
		die "not an ID: '$id' ($where)" unless $id =~ /^-?\d+$/;
		$self->add_range($alloc, $where, $id, $id + 1);
	}
	return;
}

# IDs recorded, of one allocator or of all.
sub count
{
	my ($self, $alloc) = @_;
	return $self->{count}{$alloc} // 0 if defined $alloc;
	my $n = 0;
	$n += $_ for values %{ $self->{count} };
	return $n;
}

sub allocators { my ($self) = @_; return sort keys %{ $self->{ranges} }; }

# Largest ID recorded for $alloc (undef if none).
sub max
{
	my ($self, $alloc) = @_;
	my $max;
	for my $r (@{ $self->{ranges}{$alloc} // [] })
	{
		$max = $r->[1] - 1 if !defined $max || $r->[1] - 1 > $max;
	}
	return $max;
}

# Overlaps, as "alloc: [s,e) at where1 / [s,e) at where2" strings (empty
# list: no ID was recorded twice).
sub repeats
{
	my ($self) = @_;
	my @out;
	for my $alloc (sort keys %{ $self->{ranges} })
	{
		my @r = sort { $a->[0] <=> $b->[0] || $a->[1] <=> $b->[1] }
		  @{ $self->{ranges}{$alloc} };
		my $prev;
		for my $r (@r)
		{
			if (defined $prev && $r->[0] < $prev->[1])
			{
				push @out,
				  "$alloc: [$r->[0],$r->[1]) at $r->[2] / [$prev->[0],$prev->[1]) at $prev->[2]";
			}
			$prev = $r if !defined $prev || $r->[1] > $prev->[1];
		}
	}
	return @out;
}

1;
