# Copyright (c) idalloc authors
#
# Shared helpers of idalloc's TAP tests (t/*.pl).  One place for them:
# a test file does
#
#   use FindBin;
#   use lib $FindBin::RealBin;
#   use IdallocTest;
#
# (scripts/test.sh also passes -I t to prove; the "use lib" lets a file
# run alone).
#
# Nodes and SQL
#   idalloc_node($name, %opt)     a started PostgreSQL::Test::Cluster with
#                                 idalloc preloaded (and, unless
#                                 no_extension => 1, CREATE EXTENSION done;
#                                 sql => setup SQL run after it)
#   lines($out)                   non-empty lines of psql output
#   sqlstate_of($node, $sql, %o)  run $sql; '' on success, else the SQLSTATE
#                                 of the first error (o: dbname)
#   fails_with($node, $sql, $sqlstate, $name, %o)
#                                 two assertions: it fails, with that SQLSTATE
#   one_call($alloc)              'idalloc_one()' for default, else
#                                 "idalloc_one('x')"
#   one_sql($alloc, $n)           SELECT of $n IDs of $alloc, one per row
#   sql_literal($str)             $str as an SQL string literal
#   poll_bounded($node, $sql, $s) poll $sql until it returns 't', $s seconds
#                                 at most: 1 if it did, else 0
#   allocator_state($node, @cols) name => [@cols] from idalloc_allocators
#   persisted_until($node)        name => persisted_until
#
# Collecting IDs (every helper records into an IdallocTest::IdSet)
#   take_ids($ids, $runner, $alloc, $n, $where)
#                                 $n IDs of $alloc in one statement of
#                                 $runner (a node: new session; or a
#                                 background_psql session); asserts that $n
#                                 came back, records and returns them
#   take_batch($ids, $node, $alloc, $n, $where)
#                                 one idalloc_batch($alloc, $n): asserts its
#                                 size, records it, returns (start, end)
#   record_batches($ids, $alloc, $where, $out, $count)
#                                 "start|end" lines of psql output: asserts
#                                 each has $count IDs and that there was one
#   no_repeats($ids, $name)       assertion: no ID was recorded twice
#   check_first_after($node, $ids, $tag, $persisted, @allocators)
#                                 after a restart: the first ID of each is
#                                 above every ID recorded and at most its
#                                 persisted_until before (2 assertions each)
#
# Processes
#   crash_backend($node, $pid, $tag)
#                                 kill -9 a backend, wait for the
#                                 crash-restart (3 assertions)
#   wait_gone($pid)               wait (30 s at most) until $pid is gone
#   wait_for_server($node)        poll until the node accepts connections
#   start_psql_script($node, $file, $out, $err, %o)
#                                 psql -X -A -t -q -f $file in the
#                                 background (IPC::Run), stdout / stderr to
#                                 files; o: dbname, user, appname, vars,
#                                 timeout (s: finish dies after it)
#   server_crashes($log_text)     lines of a server log that show a backend
#                                 crash, a crash-restart or a PANIC
#
# Tagged ID output (t/009, t/010): statements print
#   I|key|id|E                    SELECT 'I', key, idalloc_one(...), 'E'
#   B|key|count|start|end|E       SELECT 'B', key, count, b.start_id,
#                                 b.end_id, 'E' FROM idalloc_batch(...) b
#   parse_tagged_ids($text)       ([key, start, end, count], ...) of every
#                                 complete line (a line cut short by a
#                                 killed client is ignored); count is undef
#                                 for an I line
#
#   IdallocTest::IdSet            every ID handed out, as half-open ranges
#                                 per allocator; finds IDs handed out twice
#                                 without expanding the ranges, in memory
#                                 that grows with the gaps, not the IDs
package IdallocTest;

use strict;
use warnings;

use Exporter 'import';
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

our @EXPORT = qw(idalloc_node lines sqlstate_of fails_with
  one_call one_sql sql_literal allocator_state persisted_until
  take_ids take_batch record_batches no_repeats check_first_after
  crash_backend wait_gone wait_for_server start_psql_script server_crashes
  parse_tagged_ids crc32c poll_bounded);

# Poll $sql on $node (database postgres) until it returns 't', for $seconds
# at most: 1 if it did, 0 if time ran out (unlike poll_query_until, whose
# 180 s would let a test that must fail, such as a sync that never
# finishes, hang instead).
sub poll_bounded
{
	my ($node, $sql, $seconds) = @_;
	my $deadline = time + $seconds;
	while (1)
	{
		my ($ret, $out) = $node->psql('postgres', $sql);
		return 1 if $ret == 0 && defined $out && $out eq 't';
		return 0 if time >= $deadline;
		usleep(200_000);
	}
}

# A started node with shared_preload_libraries = 'idalloc'.
#   init => {...}        passed to $node->init (allows_streaming => 1, ...)
#   conf => "..."        more postgresql.conf lines
#   no_start => 1        do not start it
#   no_extension => 1    do not CREATE EXTENSION idalloc in "postgres"
#   sql => "..."         run this in "postgres" afterwards (safe_psql)
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
	$node->safe_psql('postgres', $opt{sql}) if defined $opt{sql};
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

sub one_call
{
	my ($alloc) = @_;
	return $alloc eq 'default'
	  ? 'idalloc_one()'
	  : 'idalloc_one(' . sql_literal($alloc) . ')';
}

sub one_sql
{
	my ($alloc, $n) = @_;
	return 'SELECT ' . one_call($alloc) . " FROM generate_series(1, $n)";
}

# An SQL string literal (standard_conforming_strings on); control
# characters and backslashes go into an E'' literal, so the result is always
# one line.
sub sql_literal
{
	my ($s) = @_;
	return 'NULL' unless defined $s;
	if ($s =~ /[\x00-\x1f\\]/)
	{
		(my $e = $s) =~ s/\\/\\\\/g;
		$e =~ s/'/\\'/g;
		$e =~ s/([\x00-\x1f])/sprintf('\\x%02x', ord($1))/ge;
		return "E'$e'";
	}
	(my $q = $s) =~ s/'/''/g;
	return "'$q'";
}

# name => [values of @cols] as idalloc_allocators shows it now
sub allocator_state
{
	my ($node, @cols) = @_;
	my %v;
	for my $line (lines($node->safe_psql('postgres',
		'SELECT name, ' . join(', ', @cols) . ' FROM idalloc_allocators')))
	{
		my ($name, @rest) = split /\|/, $line, -1;
		$v{$name} = \@rest;
	}
	return %v;
}

# name => persisted_until, as the view shows it now
sub persisted_until
{
	my ($node) = @_;
	my %s = allocator_state($node, 'persisted_until');
	return map { ($_ => $s{$_}[0]) } keys %s;
}

# $n IDs of $alloc, taken in one statement by $runner: a node (a new
# session) or a background_psql session.
sub take_ids
{
	my ($ids, $runner, $alloc, $n, $where) = @_;
	my $sql = one_sql($alloc, $n);
	my @got = lines($runner->isa('PostgreSQL::Test::Cluster')
		? $runner->safe_psql('postgres', $sql)
		: $runner->query_safe($sql));
	is(scalar(@got), $n, "$where: got $n IDs of $alloc");
	$ids->add_ids($alloc, $where, @got);
	return @got;
}

sub take_batch
{
	my ($ids, $node, $alloc, $n, $where) = @_;
	my ($s, $e) = split /\|/,
	  $node->safe_psql('postgres',
		'SELECT start_id, end_id FROM idalloc_batch(' . sql_literal($alloc) . ", $n)");
	is($e - $s, $n, "$where: batch of $n IDs of $alloc");
	$ids->add_range($alloc, $where, $s, $e);
	return ($s, $e);
}

# psql output of "SELECT start_id || '|' || end_id FROM idalloc_batch(...)"
sub record_batches
{
	my ($ids, $alloc, $where, $out, $count) = @_;
	my $n = 0;
	for my $line (lines($out))
	{
		my ($s, $e) = split /\|/, $line;
		is($e - $s, $count, "$where: batch of $alloc has $count IDs");
		$ids->add_range($alloc, $where, $s, $e);
		$n++;
	}
	ok($n > 0, "$where: batch of $alloc returned a row");
	return;
}

sub no_repeats
{
	my ($ids, $name) = @_;
	my @r = $ids->repeats;
	return is(scalar(@r), 0, $name) || diag join("\n", @r);
}

# After a restart: the first new ID of every allocator is above everything
# recorded before and (after a crash: within the block persisted before it,
# i.e. the gap is bounded) at most $persisted->{$alloc}.
sub check_first_after
{
	my ($node, $ids, $tag, $persisted, @allocators) = @_;
	for my $alloc (@allocators)
	{
		my $max = $ids->max($alloc);
		my $first = $node->safe_psql('postgres', 'SELECT ' . one_call($alloc));
		cmp_ok($first, '>', $max,
			"$tag: first ID of $alloc after the restart is above every ID handed out before ($max)"
		);
		cmp_ok($first, '<=', $persisted->{$alloc},
			"$tag: first ID of $alloc after the restart is within the block persisted before it ($persisted->{$alloc})"
		);
		$ids->add_ids($alloc, "$tag/first-after", $first);
	}
	return;
}

# kill -9 backend $pid; the postmaster must crash-restart by itself.
sub crash_backend
{
	my ($node, $pid, $tag) = @_;
	my $log_offset = -s $node->logfile;
	ok(kill('KILL', $pid), "$tag: sent SIGKILL to backend $pid");
	$node->wait_for_log(qr/all server processes terminated; reinitializing/,
		$log_offset);
	ok(wait_for_server($node),
		"$tag: server accepts connections after the crash-restart");
	like(
		slurp_file($node->logfile, $log_offset),
		# ("server process" on 15, the process type on 18: "client backend")
		qr/(?:server process|client backend) \(PID $pid\) was terminated by signal 9/,
		"$tag: the postmaster saw the backend die by SIGKILL");
	return;
}

sub wait_gone
{
	my ($pid) = @_;
	for (1 .. 600)
	{
		return 1 unless kill(0, $pid);
		usleep(50_000);
	}
	return 0;
}

sub wait_for_server
{
	my ($node) = @_;
	return $node->poll_query_until('postgres', 'SELECT true');
}

# psql -X -A -t -q -f $file against $node in the background; stdout goes to
# $out, stderr to $err (files).  Returns the IPC::Run harness ($h->finish
# waits for it, $h->kill_kill stops it).
#   dbname (postgres), user, appname, vars => { NAME => value } (-v),
#   timeout => seconds ($h->finish dies when they are up)
sub start_psql_script
{
	my ($node, $file, $out, $err, %opt) = @_;
	my $conn = $node->connstr($opt{dbname} // 'postgres');
	$conn .= " user=$opt{user}" if defined $opt{user};
	$conn .= " application_name=$opt{appname}" if defined $opt{appname};
	my @cmd = ($node->installed_command('psql'), '-X', '-A', '-t', '-q',
		'-d', $conn, '-f', $file);
	for my $var (sort keys %{ $opt{vars} // {} })
	{
		push @cmd, '-v', "$var=$opt{vars}{$var}";
	}
	my @timer = defined $opt{timeout} ? (IPC::Run::timeout($opt{timeout})) : ();
	return IPC::Run::start(\@cmd, '<', \undef, '>', $out, '2>', $err, @timer);
}

# CRC-32C (Castagnoli, as PostgreSQL's pg_crc32c.h: init and final xor
# 0xFFFFFFFF) of a byte string, as an unsigned integer: for forging state
# files that a test wants idalloc to read (pack('L', crc32c($bytes))).
my @crc32c_table;
sub crc32c
{
	my ($bytes) = @_;
	if (!@crc32c_table)
	{
		for my $n (0 .. 255)
		{
			my $c = $n;
			$c = ($c & 1) ? (($c >> 1) ^ 0x82F63B78) : ($c >> 1) for 1 .. 8;
			push @crc32c_table, $c;
		}
	}
	my $crc = 0xFFFFFFFF;
	$crc = $crc32c_table[($crc ^ $_) & 0xFF] ^ ($crc >> 8)
	  for unpack('C*', $bytes);
	return $crc ^ 0xFFFFFFFF;
}

# Lines of a server log that show a crash: a backend that died by a signal
# or an exception or with an exit code other than 0 and 1, a crash-restart,
# a PANIC, a failed Assert.
sub server_crashes
{
	my ($text) = @_;
	return grep {
		/terminated by signal|was terminated by exception|exited with exit code [^01]/
		  || /terminating any other active server processes|all server processes terminated; reinitializing/
		  || /\bPANIC:|TRAP: /
	} split /\n/, ($text // '');
}

# ([key, start, end, count], ...) from the tagged lines of $text.  Only
# complete lines count: the last one is dropped unless $text ends with a
# newline, and every line must match its whole pattern.
sub parse_tagged_ids
{
	my ($text) = @_;
	my @lines = split /\n/, ($text // ''), -1;
	pop @lines;    # '' after the last newline, or a line cut short
	my @out;
	for (@lines)
	{
		if (/^I\|([^|]+)\|(-?\d+)\|E$/)
		{
			push @out, [ $1, $2, $2 + 1, undef ];
		}
		elsif (/^B\|([^|]+)\|(-?\d+)\|(-?\d+)\|(-?\d+)\|E$/)
		{
			push @out, [ $1, $3, $4, $2 ];
		}
	}
	return @out;
}

package IdallocTest::IdSet;

# Ranges are added to a pending list; compact() sorts it and merges it into
# one sorted list of disjoint, coalesced intervals per allocator, recording
# every overlap it meets on the way.  IDs handed out densely (the normal
# case) collapse into a few intervals, so millions of IDs stay cheap.

use strict;
use warnings;

# Pending ranges are compacted when this many have been added.
my $COMPACT_AT = 200_000;
# Repeats described in full (all are counted).
my $MAX_REPORTED = 1000;

sub new
{
	my ($class) = @_;
	return bless {
		pending  => {},    # alloc => [[s, e, where], ...]
		npending => 0,
		merged   => {},    # alloc => [[s, e, where of the last piece], ...]
		count    => {},    # alloc => IDs added (repeats included)
		max      => {},    # alloc => largest ID added
		repeats  => [],    # descriptions
		repeated => 0,     # IDs added more than once (each extra copy)
	}, $class;
}

# Record [start, end) of allocator $alloc, handed out at $where.
sub add_range
{
	my ($self, $alloc, $where, $start, $end) = @_;
	die "bad range [$start, $end) ($where)"
	  unless $start =~ /^-?\d+$/ && $end =~ /^-?\d+$/ && $end > $start;
	push @{ $self->{pending}{$alloc} }, [ $start, $end, $where ];
	$self->{count}{$alloc} += $end - $start;
	$self->{max}{$alloc} = $end - 1
	  if !defined $self->{max}{$alloc} || $end - 1 > $self->{max}{$alloc};
	$self->compact if ++$self->{npending} >= $COMPACT_AT;
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

# IDs recorded, of one allocator or of all (an ID recorded twice counts
# twice).
sub count
{
	my ($self, $alloc) = @_;
	return $self->{count}{$alloc} // 0 if defined $alloc;
	my $n = 0;
	$n += $_ for values %{ $self->{count} };
	return $n;
}

# Distinct IDs recorded, of one allocator or of all.
sub distinct
{
	my ($self, $alloc) = @_;
	$self->compact;
	my $n = 0;
	for my $a (defined $alloc ? ($alloc) : keys %{ $self->{merged} })
	{
		$n += $_->[1] - $_->[0] for @{ $self->{merged}{$a} // [] };
	}
	return $n;
}

sub allocators { my ($self) = @_; return sort keys %{ $self->{count} }; }

# Largest ID recorded for $alloc (undef if none).
sub max
{
	my ($self, $alloc) = @_;
	return $self->{max}{$alloc};
}

# Overlaps, as "alloc: [s,e) at where / [s,e) at where2" strings (empty
# list: no ID was recorded twice).  At most $MAX_REPORTED are described;
# repeated() counts them all.
sub repeats
{
	my ($self) = @_;
	$self->compact;
	my @r = @{ $self->{repeats} };
	push @r, '... (' . $self->{repeated} . ' IDs recorded twice in all)'
	  if @r >= $MAX_REPORTED;
	return @r;
}

# How many IDs were recorded more than once (each extra copy counts).
sub repeated
{
	my ($self) = @_;
	$self->compact;
	return $self->{repeated};
}

sub compact
{
	my ($self) = @_;
	for my $alloc (keys %{ $self->{pending} })
	{
		my @new = sort { $a->[0] <=> $b->[0] || $a->[1] <=> $b->[1] }
		  @{ $self->{pending}{$alloc} };
		my $old = $self->{merged}{$alloc} // [];
		my (@out, $cur);
		my ($i, $j) = (0, 0);
		while ($i < @$old || $j < @new)
		{
			# next by start: old intervals first on a tie
			my $r =
			  ($j >= @new || ($i < @$old && $old->[$i][0] <= $new[$j][0]))
			  ? $old->[ $i++ ]
			  : $new[ $j++ ];
			if (!defined $cur)
			{
				$cur = [@$r];
				next;
			}
			if ($r->[0] < $cur->[1])
			{
				my $over_end = $r->[1] < $cur->[1] ? $r->[1] : $cur->[1];
				$self->{repeated} += $over_end - $r->[0];
				push @{ $self->{repeats} },
				  "$alloc: [$r->[0],$r->[1]) at $r->[2] / [$cur->[0],$cur->[1]) at $cur->[2]"
				  if @{ $self->{repeats} } < $MAX_REPORTED;
			}
			if ($r->[0] <= $cur->[1])
			{
				# overlapping or adjacent: one interval
				if ($r->[1] > $cur->[1])
				{
					$cur->[1] = $r->[1];
					$cur->[2] = $r->[2];
				}
			}
			else
			{
				push @out, $cur;
				$cur = [@$r];
			}
		}
		push @out, $cur if defined $cur;
		$self->{merged}{$alloc} = \@out;
	}
	$self->{pending}  = {};
	$self->{npending} = 0;
	return;
}

1;
