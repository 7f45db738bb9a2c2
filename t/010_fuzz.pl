# Copyright (c) idalloc authors
#
# G6 (never stuck, never wrong) and G1 under SQL fuzzing.  Several psql
# sessions at once (one of them a non-superuser) run generated scripts of
# random calls of every idalloc function and view with hostile arguments:
# NULLs, 0, negatives, the int4 / int8 limits, empty names, names of 63 / 64
# / 1000 bytes, multi-byte names whose 63rd byte falls inside a character,
# names just dropped, unknown kinds and sources, out-of-range literals,
# direct writes to idalloc_registry, read-only transactions, rolled back
# creates, statement timeouts; with create / drop / alter / advance / sync
# churn.  Then:
#   - no backend crashed: no crash-restart in the server log (the
#     postmaster's start time, also checked, survives a crash-restart) and
#     every session ran to its end;
#   - every error has a SQLSTATE of the SPEC (no XX000, no 23505);
#   - calls whose outcome is certain (a single bad argument, an unknown
#     name, a management call by the non-superuser, a name dropped by the
#     same session) fail with exactly the SPEC's SQLSTATE;
#   - every batch has the size asked for, and no ID is handed out twice by
#     one allocator.  Each name is created by one session only and never
#     again after that session dropped it (or rolled its create back), so a
#     name has at most one incarnation and the IDs can be keyed by name;
#   - within a session, IDs of a cache = 1 allocator increase;
#   - afterwards every live allocator's next_id is above every ID it handed
#     out, also after an immediate restart, and every dropped name is gone.
#
# Long form (make soak): IDALLOC_FUZZ_CALLS (default 4000, all sessions
# together), IDALLOC_FUZZ_SESSIONS (default 4, the last one non-superuser),
# IDALLOC_SEED.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use IdallocTest;
use List::Util qw(uniq);
use Math::BigInt;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $calls     = $ENV{IDALLOC_FUZZ_CALLS}    // 4000;
my $nsessions = $ENV{IDALLOC_FUZZ_SESSIONS} // 4;
my $seed      = $ENV{IDALLOC_SEED}          // (time() ^ $$);
srand($seed);
$nsessions = 2 if $nsessions < 2;
note "fuzz: $calls calls in $nsessions sessions, seed $seed";

# SQLSTATEs the SPEC allows an idalloc call to fail with, plus 25P02 (a
# statement after an error in an explicit transaction) and 22003 (a literal
# that does not fit its parameter's type).  Class 08 only for allocators
# created with a source.
my %allowed = map { ($_ => 1) }
  qw(55000 42704 42710 22023 22004 2200H 25006 53400 42501 0A000 57014
  55P03 40P01 25P02 22003);

# small enough that creates sometimes meet the limit (53400)
my $max_allocators = 22;
my $node = idalloc_node(
	'fuzz',
	init => { extra => [ '--encoding=UTF8', '--locale=C' ] },
	conf => "max_connections = " . ($nsessions + 20) . "\n"
	  . "restart_after_crash = on\n"
	  . "idalloc.max_allocators = $max_allocators\n");
$node->safe_psql('postgres', 'CREATE ROLE fuzzer LOGIN');

# The installed signatures decide which optional arguments exist.
my %argnames = map { split /\|/, $_, 2 } lines($node->safe_psql(
	'postgres', q{
	SELECT proname, array_to_string(proargnames, ',') FROM pg_proc
	 WHERE proname IN ('idalloc_create', 'idalloc_alter')}));
my %create_has = map { ($_ => 1) } split /,/, $argnames{idalloc_create} // '';
my %alter_has  = map { ($_ => 1) } split /,/, $argnames{idalloc_alter}  // '';

############################################################################
# Names.  $names[$key] = { name (undef: NULL), lit, class }; class:
#   stable   created here, never dropped
#   mono     stable, cache 1, never altered: IDs increase within a session
#   edge     stable, gets the hostile advances and huge batches
#   churn    created (at most once successfully) and dropped by its owner
#   once     a single create with one bad (or unusual) argument, never reused
#   unknown  valid, never created
#   invalid  empty or longer than 63 bytes
#   null     NULL
my @names;
my %key_of;      # name => key
my %by_class;    # class => [keys]

sub add_name
{
	my ($name, $class, %more) = @_;
	push @names, { name => $name, lit => sql_literal($name), class => $class, %more };
	$key_of{$name} = $#names if defined $name;
	push @{ $by_class{$class} }, $#names;
	return $#names;
}

my $ae = "\x{e4}";        # ä: 2 bytes in UTF-8
my $smile = "\x{1f600}";  # 4 bytes
add_name('default', 'stable');
add_name('mono', 'mono');
add_name('s_tiny', 'stable', create => "block => 1");
add_name('s_cached', 'stable', create => "block => 10, cache => 7");
add_name('s_big', 'stable', create => "start => -9223372036854775808, block => 1000000, cache => 100");
add_name('edge', 'edge', create => "block => 5");
add_name('n' x 63, 'stable');                 # 63 bytes
add_name($ae x 31 . 'x', 'stable');          # 63 bytes, multi-byte
add_name($ae x 31, 'stable');                # 62 bytes
add_name($smile x 15, 'stable');             # 60 bytes
add_name("o'quote \\ back", 'stable');
add_name('Default', 'stable');               # not the same as default
add_name("tab\tname", 'stable');
my @invalid = ('', 'n' x 64, 'n' x 63 . 'z', 'y' x 1000, $ae x 32,
	'xx' . $ae x 31, $ae x 31 . 'xz', $smile x 16, 'x' . $smile x 16);
add_name($_, 'invalid') for @invalid;
add_name(undef, 'null');
add_name($_, 'unknown') for ('nope', 'DEFAULT', 'default ', ' default', $ae x 30, "m\x{f6}p");

# Every name is handed to Perl's string functions as characters; the byte
# length is what the SPEC limits.
sub bytes { my ($s) = @_; utf8::encode($s); return length $s; }
for (@names)
{
	next unless defined $_->{name};
	my $b = bytes($_->{name});
	die "name class of '$_->{name}' ($b bytes) is wrong"
	  if ($_->{class} eq 'invalid') != ($b == 0 || $b > 63);
}

# stable allocators
$node->safe_psql('postgres',
	join("\n",
		map {
			'SELECT idalloc_create(' . $_->{lit}
			  . ($_->{create} ? ", $_->{create}" : '') . ');'
		} grep {
			$_->{class} =~ /^(stable|mono|edge)$/ && $_->{name} ne 'default'
		} @names));
$node->safe_psql('postgres',
	'CREATE TABLE fuzz_sink (id bigint); GRANT INSERT ON fuzz_sink TO fuzzer');

sub keys_of { return map { @{ $by_class{$_} // [] } } @_; }
my @stable_keys = keys_of(qw(stable mono edge));

############################################################################
# Values
my @bigints = qw(1 2 3 7 100 1000 200000 0 -1 -2 -9223372036854775808
  9223372036854775807 9223372036854775806 2147483647 2147483648
  4611686018427387904 NULL 9223372036854775808 -9223372036854775809);
my @ints = qw(1 2 5 50 1000 0 -1 -2147483648 2147483647 NULL 2147483648);
my @counts = (1, 1, 2, 3, 17, 100, 1000, 200001);

sub pick { return $_[ int(rand(@_)) ]; }

# A literal for a parameter of type int8 / int4: quoted, so that it is
# coerced to the parameter's type (an out-of-range one fails with 22003).
sub int_lit
{
	my ($v, $bits) = @_;
	return ('NULL', 0) if $v eq 'NULL';
	my $max = $bits == 64 ? Math::BigInt->new('9223372036854775807') : Math::BigInt->new(2147483647);
	my $bv = Math::BigInt->new($v);
	my $over = $bv > $max || $bv < -$max - 1;
	return ("'$v'", $over ? 1 : 0);
}

############################################################################
# Script generation.  Each statement is one line; @{ $meta[$s] }[line] =
# { expect => [states or 'ok'], if_ok => line, note => text }.
my @meta;
my @dropped;    # [key, session, line] of drops whose success is checked later

sub key_lit { my ($k) = @_; return $names[$k]{lit}; }

# a name for an allocation or a management call that is not a create
sub pick_target
{
	my ($s, $churn) = @_;
	my $r = rand();
	return pick(@stable_keys) if $r < 0.45;
	return pick(@$churn) if $r < 0.70 && @$churn;
	return pick(keys_of('once')) if $r < 0.75 && $by_class{once};
	return pick(keys_of('invalid')) if $r < 0.85;
	return pick(keys_of('null')) if $r < 0.90;
	return pick(keys_of('unknown'));
}

# The outcome a call must have, from what is wrong with it (undef: not
# certain).  %f:
#   over      an argument literal out of its type's range: 22003, raised
#             while the statement is parsed, before anything else
#   denied    a management function called by the non-superuser: 42501,
#             checked before the function runs
#   strict    a NULL argument of a STRICT function: it is not called
#   name      the key of the allocator name passed
#   null_err  a NULL name is an error (22004), not a STRICT no-op
#   bad       SQLSTATEs of the other bad arguments (22023, 22004)
#   ok        nothing is wrong: success is certain
# With several bad arguments, any of their SQLSTATEs may come first; an
# allocator that may or may not exist adds 42704 to them.
sub expect_of
{
	my (%f) = @_;
	return ['22003'] if $f{over};
	return ['42501'] if $f{denied};
	return ['ok'] if $f{strict};
	my @bad = @{ $f{bad} // [] };
	my @maybe;
	if (defined $f{name})
	{
		my $c = $names[ $f{name} ]{class};
		push @bad, '22023' if $c eq 'invalid';
		push @bad, '42704' if $c eq 'unknown';
		push @bad, '22004' if $c eq 'null';
		push @maybe, '42704' if $c =~ /^(churn|once)$/;
		return ['ok'] if $c eq 'null' && !$f{null_err};
	}
	return [ uniq(@bad, @maybe) ] if @bad;
	return ['ok'] if $f{ok};
	return undef;    ## no critic (ProhibitExplicitReturnUndef): a list element
}

# SQLSTATE of a bad int value given to a size argument (block, cache,
# count): 22023 below 1, 22004 for NULL where NULL is not allowed
sub size_fault
{
	my ($v, $null_ok) = @_;
	return () if $v eq 'NULL' && $null_ok;
	return ('22004') if $v eq 'NULL';
	return ('22023') if Math::BigInt->new($v) < 1;
	return ();
}

sub is_default { my ($k) = @_; return ($names[$k]{name} // '') eq 'default'; }

sub one_stmt
{
	my ($k, $n) = @_;
	my $call = is_default($k) && rand() < 0.5
	  ? 'idalloc_one()'
	  : 'idalloc_one(' . key_lit($k) . ')';
	return "SELECT 'I', $k, $call, 'E'"
	  . ($n > 1 ? " FROM generate_series(1, $n)" : '') . ';';
}

# returns (sql, count, whether the count literal is out of range)
sub batch_stmt
{
	my ($k, $hostile) = @_;
	my $count = $hostile ? pick(@bigints) : pick(@counts);
	$count = pick(@counts) if $count =~ /^(4611686018427387904|9223372036854775806)$/
	  && $names[$k]{class} ne 'edge' && $names[$k]{class} ne 'churn';
	my ($lit, $over) = int_lit($count, 64);
	my $args = is_default($k) && rand() < 0.5 ? $lit : key_lit($k) . ", $lit";
	my $shown = $count eq 'NULL' ? 0 : $count;
	my $sql = "SELECT 'B', $k, '$shown', b.start_id, b.end_id, 'E' FROM idalloc_batch($args) b;";
	return ($sql, $count, $over);
}

sub views_stmt
{
	return pick(
		q{SELECT 'V', count(*), sum(allocated), max(persisted_until), sum(cached_ranges), length(string_agg(name || kind, ',')) FROM idalloc_allocators;},
		q{SELECT 'V', count(*), max(end_id), min(next_id), length(string_agg(allocator, ',')) FROM idalloc_caches;},
		q{SELECT 'V', count(*), max(persisted_end), length(string_agg(name || block || cache, ',')) FROM idalloc_registry;},
		q{SELECT 'V', count(*) FROM idalloc_caches WHERE pid = pg_backend_pid();});
}

sub create_args
{
	my ($hostile) = @_;
	my (@a, $over);
	my %v = (
		start => $hostile ? pick(@bigints) : pick(qw(1 1 100 -5 1000000)),
		block => $hostile ? pick(@bigints) : pick(qw(1 3 10 100 NULL)),
		cache => $hostile ? pick(@ints) : pick(qw(1 1 4 50)));
	for my $arg (qw(start block cache))
	{
		next if rand() < 0.3;
		my ($lit, $o) = int_lit($v{$arg}, $arg eq 'cache' ? 32 : 64);
		$over ||= $o;
		push @a, "$arg => $lit";
	}
	push @a, 'kind => ' . pick(q{'counter'}, q{'counter'}, 'NULL', q{'tso'}, q{'foo'}, q{''})
	  if $hostile && rand() < 0.3;
	push @a, 'source => ' . pick('NULL', q{'host=localhost port=1 dbname=postgres'}, q{''})
	  if $hostile && rand() < 0.2;
	push @a, 'if_not_exists => ' . pick('true', 'false', 'NULL')
	  if $create_has{if_not_exists} && rand() < 0.2;
	return (join(', ', @a), $over);
}

# A "once" create: one unusual argument, the rest valid; returns the SQL
# and its expected outcomes.
sub once_create
{
	my ($k) = @_;
	my $lit = key_lit($k);
	my @cases = (
		[ "kind => 'foo'",  ['22023'] ],
		[ "kind => ''",     ['22023'] ],
		[ "kind => 'Counter'", ['22023'] ],
		[ 'kind => NULL',   ['22004'] ],
		[ "kind => 'tso'",  [ 'ok', '0A000', '53400' ] ],
		# (nothing listens on port 1: the authority cannot be reached)
		[ "source => 'host=localhost port=1 dbname=postgres'", [ '08001', '42501' ] ],
		[ "source => 'host=x nonsense=1'", [ '22023', '42501' ] ],
		[ 'start => NULL',  ['22004'] ],
		[ 'cache => NULL',  ['22004'] ],
		[ 'block => NULL',  [ 'ok', '53400' ] ],
		[ 'block => 0',     ['22023'] ],
		[ 'block => -1',    ['22023'] ],
		[ "block => '-9223372036854775808'", ['22023'] ],
		[ 'cache => 0',     ['22023'] ],
		[ "cache => '-2147483648'", ['22023'] ],
		[ "cache => '2147483648'", ['22003'] ],
		[ "start => '9223372036854775807'", [ 'ok', '2200H', '22023', '53400' ] ],
		[ "start => '-9223372036854775808'", [ 'ok', '53400' ] ],
		[ "block => '9223372036854775807'", [ 'ok', '53400' ] ],
		[ "cache => '2147483647'", [ 'ok', '53400' ] ]);
	my ($arg, $expect) = @{ pick(@cases) };
	$names[$k]{source} = 1 if $arg =~ /^source/;
	return ("SELECT idalloc_create($lit, $arg);", $expect);
}

# Statements of session $s (superuser unless $s is the last one).
sub gen_session
{
	my ($s, $budget) = @_;
	my $superuser = $s < $nsessions;
	my @sql = ('\set VERBOSITY sqlstate', '\set SHOW_CONTEXT never');
	my @m = (undef, {}, {});    # $m[line]
	my (@own_new, @own_live, @churn_seen);
	my $emit = sub {
		my ($line, %meta) = @_;
		push @sql, $line;
		push @m, \%meta;
		return scalar(@sql);    # its line number
	};
	my $nchurn = 0;
	my $new_churn = sub {
		$nchurn++;
		my $base = "c${s}_$nchurn";
		# some churn names are 63 bytes, made of multi-byte characters
		$base .= '_' . $ae x int((63 - length($base) - 1) / 2)
		  if rand() < 0.2;
		my $k = add_name($base, 'churn', owner => $s);
		push @own_new, $k;
		return $k;
	};
	# other sessions' churn names are known only once generated: sessions are
	# generated in turn, so each sees those of the sessions before it, and
	# its own
	@churn_seen = keys_of('churn');
	my $done = 0;
	while ($done < $budget)
	{
		$done++;
		my $r = rand();
		my @churn = (@churn_seen, @own_new, @own_live);
		if ($r < 0.30)
		{
			my $k = pick_target($s, \@churn);
			my $n = rand() < 0.7 ? 1 : 1 + int(rand(20));
			$emit->(one_stmt($k, $n), expect => expect_of(name => $k), key => $k);
		}
		elsif ($r < 0.45)
		{
			my $k = pick_target($s, \@churn);
			my ($sql, $count, $over) = batch_stmt($k, rand() < 0.3);
			$emit->($sql, key => $k,
				expect => expect_of(over => $over, strict => $count eq 'NULL',
					name => $k, bad => [ size_fault($count, 1) ]));
		}
		elsif ($r < 0.47)
		{
			# one call site, several names
			my @k = map { pick(@stable_keys, @churn) } 1 .. 3;
			my $vals = join(', ', map { "($_, " . key_lit($_) . ')' } @k);
			$emit->("SELECT 'I', k, idalloc_one(n), 'E' FROM (VALUES $vals) v(k, n);");
		}
		elsif ($r < 0.49)
		{
			# batches in a lateral join
			my $k = pick(@stable_keys, @churn);
			my $lit = key_lit($k);
			$emit->("SELECT 'B', $k, g, b.start_id, b.end_id, 'E' FROM generate_series(1, 4) g, LATERAL idalloc_batch($lit, g) b;");
		}
		elsif ($r < 0.60)
		{
			# create
			my $c = rand();
			if (!$superuser)
			{
				my $k = pick_target($s, \@churn);
				my ($args, $over) = create_args(rand() < 0.5);
				$emit->('SELECT idalloc_create(' . key_lit($k) . ($args ? ", $args" : '') . ');',
					expect => expect_of(over => $over, denied => 1));
			}
			elsif ($c < 0.45)
			{
				# an own churn name: a new one, or one not yet known to exist
				my $k = (@own_new && rand() < 0.5) ? pick(@own_new) : $new_churn->();
				my ($args, $over) = create_args(rand() < 0.3);
				$emit->('SELECT idalloc_create(' . key_lit($k) . ($args ? ", $args" : '') . ');');
				if (!grep { $_ == $k } @own_live)
				{
					push @own_live, $k;
				}
			}
			elsif ($c < 0.75)
			{
				# a name of its own, dropped again right away (nearly always)
				# so that idalloc.max_allocators does not fill up
				my $k = add_name("o${s}_" . scalar(@names), 'once');
				my ($sql, $expect) = once_create($k);
				my $line = $emit->($sql, expect => $expect);
				$emit->('SELECT idalloc_drop(' . key_lit($k) . ');', expect => ['ok'], if_ok => $line)
				  if rand() < 0.95;
			}
			elsif ($c < 0.90)
			{
				my $k = pick(keys_of(qw(invalid null)));
				my ($args) = create_args(0);
				$args = join(', ', grep { !/NULL/ } split /, /, $args);
				$emit->('SELECT idalloc_create(' . key_lit($k) . ($args ? ", $args" : '') . ');',
					expect => [ defined $names[$k]{name} ? '22023' : '22004' ]);
			}
			else
			{
				my $k = pick(@stable_keys);
				$emit->('SELECT idalloc_create(' . key_lit($k) . ');', expect => ['42710']);
			}
		}
		elsif ($r < 0.65)
		{
			# drop: only the owner drops a churn name, once and for all
			if ($superuser && @own_live && rand() < 0.85)
			{
				my $i = int(rand(@own_live));
				my $k = splice(@own_live, $i, 1);
				@own_new = grep { $_ != $k } @own_new;
				my $line = $emit->('SELECT idalloc_drop(' . key_lit($k) . ');');
				push @dropped, [ $k, $s, $line ];
				# right after: gone for this session, cached or not
				$emit->(one_stmt($k, 1), expect => ['42704'], if_ok => $line, key => $k)
				  if rand() < 0.7;
				$emit->((batch_stmt($k, 0))[0], expect => ['42704'], if_ok => $line, key => $k)
				  if rand() < 0.3;
			}
			else
			{
				my $k = pick(keys_of(qw(invalid null unknown)),
					$superuser ? () : (@stable_keys, @churn));
				$emit->('SELECT idalloc_drop(' . key_lit($k) . ');',
					expect => expect_of(denied => !$superuser, name => $k, null_err => 1));
			}
		}
		elsif ($r < 0.71)
		{
			# alter (never mono: its cache stays 1)
			my $k = pick_target($s, \@churn);
			$k = $key_of{s_cached} if $names[$k]{class} eq 'mono';
			my $bv = pick(@bigints, qw(1 5 100 200000));
			my $cv = pick(@ints, qw(1 1 3 10));
			my ($b, $bo) = int_lit($bv, 64);
			my ($c, $co) = int_lit($cv, 32);
			my $which = int(rand(4));
			my $args = ("block => $b", "cache => $c", "block => $b, cache => $c", "$b, $c")[$which];
			my $over = ($which != 1 && $bo) || ($which != 0 && $co);
			my @bad = (($which != 1 ? size_fault($bv, 1) : ()),
				($which != 0 ? size_fault($cv, 1) : ()));
			$emit->('SELECT idalloc_alter(' . key_lit($k) . ", $args);",
				expect => expect_of(over => $over, denied => !$superuser, name => $k,
					null_err => 1, bad => \@bad,
					ok => scalar($names[$k]{class} =~ /^(stable|edge)$/)));
		}
		elsif ($r < 0.76)
		{
			# advance: hostile values only on edge and churn allocators
			my $k = pick_target($s, \@churn);
			my $v = $names[$k]{class} =~ /^(edge|churn|once)$/
			  ? pick(@bigints, 1000, 100000)
			  : pick(qw(1 0 -5 1000 100000 NULL));
			my ($lit, $over) = int_lit($v, 64);
			$emit->("SELECT 'A', idalloc_advance(" . key_lit($k) . ", $lit);",
				expect => expect_of(over => $over, denied => !$superuser, name => $k,
					null_err => 1, bad => [ $v eq 'NULL' ? '22004' : () ]));
		}
		elsif ($r < 0.80)
		{
			my $k = pick_target($s, \@churn);
			$emit->('SELECT idalloc_sync(' . key_lit($k) . ');',
				expect => expect_of(name => $k, null_err => 1,
					ok => scalar($names[$k]{class} =~ /^(stable|mono|edge)$/)));
		}
		elsif ($r < 0.87)
		{
			$emit->(views_stmt());
		}
		elsif ($r < 0.90)
		{
			# read-only transaction
			my $k = pick(@stable_keys);
			$emit->('BEGIN READ ONLY;');
			$emit->(rand() < 0.5 ? one_stmt($k, 1) : (batch_stmt($k, 0))[0],
				expect => ['25006'], key => $k);
			$emit->('ROLLBACK;');
		}
		elsif ($r < 0.93)
		{
			# a transaction that allocates and (mostly) rolls back (G4);
			# sometimes with a create of an own churn name in it, which then
			# is never created again: rolled back, it is gone for good;
			# committed, its owner drops it some time later
			my $commit = rand() < 0.25;
			$emit->('BEGIN;');
			if ($superuser && rand() < 0.4)
			{
				my $k = $new_churn->();
				@own_new = grep { $_ != $k } @own_new;
				$emit->('SELECT idalloc_create(' . key_lit($k) . ', block => 2);');
				$emit->(one_stmt($k, 3), key => $k);
				$emit->((batch_stmt($k, 0))[0], key => $k);
				push @own_live, $k if $commit;
			}
			$emit->(one_stmt(pick(@stable_keys), 2));
			$emit->((batch_stmt(pick(@stable_keys), 0))[0]);
			$emit->($commit ? 'COMMIT;' : 'ROLLBACK;');
		}
		elsif ($r < 0.95)
		{
			# a statement timeout that may strike in the middle (s_tiny
			# persists a block per ID: it is always too slow).  Should it
			# strike the COMMIT instead, the transaction stays open (and
			# aborted): the ROLLBACK ends it (else it only warns).
			my $k = pick(@stable_keys);
			$emit->('BEGIN;');
			$emit->(q{SET LOCAL statement_timeout = '5ms';});
			$emit->("SELECT 'I', $k, idalloc_one(" . key_lit($k) . "), 'E' FROM generate_series(1, 20000);");
			$emit->('COMMIT;');
			$emit->('ROLLBACK;');
		}
		elsif ($r < 0.97)
		{
			# direct writes to the catalog table
			my $k = pick(@stable_keys);
			my $lit = key_lit($k);
			my $sql = pick(
				"UPDATE idalloc_registry SET persisted_end = start WHERE name = $lit;",
				"UPDATE idalloc_registry SET block = 1 WHERE name = $lit;",
				"DELETE FROM idalloc_registry WHERE name = $lit;",
				'TRUNCATE idalloc_registry;',
				"INSERT INTO idalloc_registry (name, start, block, persisted_end, cache, kind) VALUES ('ins_$s', 1, 1, 1, 1, 'counter');");
			$emit->($sql, expect => ['42501']);
		}
		else
		{
			# synchronous_commit and an INSERT of IDs
			my $k = pick(@stable_keys);
			$emit->('SET synchronous_commit = ' . pick(qw(on off local)) . ';');
			$emit->("INSERT INTO fuzz_sink SELECT idalloc_one(" . key_lit($k) . ") FROM generate_series(1, 3) RETURNING 'I', $k, id, 'E';",
				key => $k);
		}
	}
	return (\@sql, \@m);
}

my $dir = PostgreSQL::Test::Utils::tempdir;
my @scripts;
for my $s (1 .. $nsessions)
{
	my ($sql, $m) = gen_session($s, int($calls / $nsessions));
	$meta[$s] = $m;
	my $file = "$dir/s$s.sql";
	open my $fh, '>:encoding(UTF-8)', $file or die "open $file: $!";
	print $fh join("\n", @$sql, q{SELECT 'DONE';}), "\n";
	close $fh;
	push @scripts, $file;
}
# calls: statements that call an idalloc function or read its views or table
my $nstatements = grep { /idalloc_/ } map { lines(slurp_file($_)) } @scripts;

############################################################################
# Run the sessions at once.
my $start_time = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');
my $log_offset = -s $node->logfile;
my $t0 = time();
my @h;
for my $s (1 .. $nsessions)
{
	push @h,
	  start_psql_script($node, "$dir/s$s.sql", "$dir/s$s.out", "$dir/s$s.err",
		user => ($s < $nsessions ? undef : 'fuzzer'),
		appname => "fuzz_$s", timeout => 3600);
}
for my $h (@h)
{
	eval { $h->finish; 1 } or do { diag "session: $@"; $h->kill_kill; };
}
my $secs = time() - $t0;

############################################################################
# Results
# (a crash-restart takes a moment: wait for it, if there was one)
my @crash = server_crashes(slurp_file($node->logfile, $log_offset));
wait_for_server($node) if @crash;
my ($ret, $now_start) = $node->psql('postgres', 'SELECT pg_postmaster_start_time()');
is($now_start, $start_time, 'the postmaster never restarted');
is(join("\n", @crash), '', 'no backend crashed (server log)');

my $ids = IdallocTest::IdSet->new;
my (%states, @bad_state, @missed, @stray, @bad_batch, @order);
my $id_rows = 0;
my %err_of;    # session => line => SQLSTATE
my %ran_of;    # session => lines run
my @unfinished;
for my $s (1 .. $nsessions)
{
	my $m = $meta[$s];

	# errors, by line
	my %err;
	$err_of{$s} = \%err;
	my @script = split /\n/, slurp_file("$dir/s$s.sql");
	my $sourced = grep { $_->{source} } @names;
	for (lines(slurp_file("$dir/s$s.err")))
	{
		if (/^psql:[^:]*:(\d+): (ERROR|FATAL|PANIC):\s+([0-9A-Z]{5})$/)
		{
			$err{$1} //= $3;
			$states{$3}++;
			push @bad_state, "session $s line $1: $2 $3: $script[$1 - 1]"
			  unless $2 eq 'ERROR' && ($allowed{$3} || ($3 =~ /^08/ && $sourced));
		}
		elsif (!/^psql:[^:]*:\d+: (NOTICE|WARNING|INFO):/)
		{
			push @stray, "session $s: $_";
		}
	}

	# Lines that ran: all if the session reached its end, else those before
	# the line where it lost its connection.
	my $out = slurp_file("$dir/s$s.out");
	my $ran = $#script + 1;
	if ($out !~ /^DONE$/m)
	{
		push @unfinished, $s;
		$ran = 0;
		for (lines(slurp_file("$dir/s$s.err")))
		{
			$ran = $1 - 1 if /^psql:[^:]*:(\d+): / && !/: (ERROR|NOTICE|WARNING|INFO):/
			  && ($ran == 0 || $1 - 1 < $ran);
		}
	}
	$ran_of{$s} = $ran;

	# certain outcomes
	for my $line (1 .. $#$m)
	{
		my $x = $m->[$line];
		next unless $x->{expect} && $line <= $ran;
		next if $x->{if_ok} && exists $err{ $x->{if_ok} };
		my $got = $err{$line} // 'ok';
		next if grep { $_ eq $got } @{ $x->{expect} };
		my $sql = $script[ $line - 1 ];
		push @missed, "session $s line $line: got $got, expected "
		  . join('/', @{ $x->{expect} }) . ": $sql";
	}

	# IDs
	my %last;
	my $n = 0;
	for my $rec (parse_tagged_ids($out))
	{
		my ($k, $st, $e, $count) = @$rec;
		$n++;
		$id_rows++;
		if (defined $count
			&& Math::BigInt->new($e)->bsub($st)->bcmp(Math::BigInt->new($count)) != 0)
		{
			push @bad_batch, "session $s: batch of $count IDs of key $k is [$st,$e)";
		}
		$ids->add_range($k, "session $s, output row $n", $st, $e);
		if ($names[$k]{class} eq 'mono')
		{
			push @order, "session $s: mono $st after " . ($last{$k} - 1)
			  if defined $last{$k} && $st < $last{$k};
			$last{$k} = $e;
		}
	}
}
my $errors = 0;
$errors += $_ for values %states;

is(join(', ', @unfinished), '', 'every session ran to its end');
is(join("\n", @bad_state), '', 'every error has a SQLSTATE of the SPEC');
ok(!$states{XX000} && !$states{23505}, 'no internal error (XX000) and no unique violation (23505)');
is(join("\n", @missed), '', 'calls with a certain outcome had exactly that outcome');
is(join("\n", @stray), '', 'psql printed nothing unexpected on stderr');
is(join("\n", @bad_batch), '', 'every batch has the size asked for');
is($ids->repeated, 0, 'no allocator handed out an ID twice')
  or diag join("\n", $ids->repeats);
is(join("\n", @order), '', 'IDs of a cache = 1 allocator increase within a session');
cmp_ok($ids->count, '>', 0, 'IDs were handed out');
cmp_ok($errors, '>', 0, 'errors were raised');

# After the fuzz: every live allocator is above what it handed out, also
# after an immediate restart; every dropped name is gone.
sub check_above
{
	my ($tag) = @_;
	my @low;
	for (lines($node->safe_psql('postgres',
		q{SELECT encode(convert_to(name, 'UTF8'), 'hex'), next_id FROM idalloc_allocators})))
	{
		my ($hex, $next) = split /\|/;
		my $name = pack('H*', $hex);
		utf8::decode($name);
		my $k = $key_of{$name};
		next unless defined $k && defined $ids->max($k);
		push @low, "$names[$k]{lit}: next_id $next, max handed out " . $ids->max($k)
		  if $next <= $ids->max($k);
	}
	is(join("\n", @low), '', "$tag: next_id of every allocator is above every ID it handed out");
	return;
}
check_above('after the fuzz');

# Slots of dropped allocators and of rolled back creates were reclaimed:
# the allocators that exist plus as many new ones as idalloc.max_allocators
# leaves room for can be created, and not one more.
my $live = $node->safe_psql('postgres', 'SELECT count(*) FROM idalloc_registry');
my $room = $max_allocators - $live;
my ($state, $out, $err) = sqlstate_of($node,
	join("\n", map { "SELECT idalloc_create('final_$_');" } 1 .. $room));
is($state, '', "$room more allocators fit beside the $live left by the fuzz")
  or diag $err;
fails_with($node, q{SELECT idalloc_create('final_one_too_many')}, '53400',
	'and not one more');
$node->stop('immediate');
$node->start;
check_above('after an immediate restart');

my @gone = map { $_->[0] }
  grep { $_->[2] <= $ran_of{ $_->[1] } && !exists $err_of{ $_->[1] }{ $_->[2] } } @dropped;
my $gone_sql = "$dir/gone.sql";
{
	open my $fh, '>:encoding(UTF-8)', $gone_sql or die "open: $!";
	print $fh "\\set VERBOSITY sqlstate\n";
	print $fh 'SELECT idalloc_one(' . key_lit($_) . ");\n" for @gone;
	close $fh;
}
my $h = start_psql_script($node, $gone_sql, "$dir/gone.out", "$dir/gone.err", timeout => 300);
$h->finish;
my $n42704 = grep { /ERROR:\s+42704$/ } lines(slurp_file("$dir/gone.err"));
is($n42704, scalar(@gone), 'every dropped name is gone (' . scalar(@gone) . ' names)');

my $summary = join(',', map { "$_:$states{$_}" } sort keys %states);
note sprintf('%d calls in %d sessions in %.1f s; %d ID rows, %.0f IDs (%d allocators); %d errors: %s',
	$nstatements, $nsessions, $secs, $id_rows, $ids->count, scalar(my @a = $ids->allocators),
	$errors, $summary);
diag sprintf('SUMMARY fuzz: calls=%d id_rows=%d ids=%.0f duplicates=%.0f errors=%d sqlstates=%s seconds=%.0f',
	$nstatements, $id_rows, $ids->count, $ids->repeated, $errors, $summary, $secs);

$node->stop;
done_testing();
