# Copyright (c) idalloc authors
#
# The upgrade paths 1.0 -> 1.1 -> 1.2 and 1.1 -> 1.2 (issue 7, "Version
# 1.1 and the upgrade path"; issue 17 for 1.2; SPEC: "ALTER EXTENSION
# idalloc UPDATE from an installation of an earlier version that is in use
# gives the same objects as a fresh install, with no ID repeated").
#
#   (a) database "up": CREATE EXTENSION idalloc VERSION '1.0'; the new
#       library works with the 1.0 objects (default, a named allocator, a
#       cached one, batches, a drop, the views), IDs recorded;
#   (b) ALTER EXTENSION idalloc UPDATE (while a session holds a cached
#       range): extversion is 1.2, allocation goes on above every earlier
#       ID, also in the session that held a range, after a clean restart
#       and after an immediate restart; no ID twice;
#   (c) database "fresh": CREATE EXTENSION idalloc (1.2); database "up11":
#       CREATE EXTENSION idalloc VERSION '1.1', then ALTER EXTENSION
#       UPDATE; the catalog objects of each updated installation and the
#       fresh one are compared section by section
#       (member objects, functions with signature, result, volatility,
#       strictness, parallel safety, security definer and normalized ACL,
#       tables with columns, constraints, indexes, replica identity and
#       ACL, sequences, triggers with their enabled mode, views with their
#       definitions and ACLs, event triggers, policies, rules, comments,
#       extconfig / extcondition); a difference is printed as the lines
#       only in one of them.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use IdallocTest qw(idalloc_node lines);

my $node = idalloc_node('upgrade', no_extension => 1);
$node->safe_psql('postgres', 'CREATE DATABASE up');
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('postgres', 'CREATE DATABASE up11');

my $ids = IdallocTest::IdSet->new;

sub call_one
{
	my ($alloc) = @_;
	return $alloc eq 'default' ? 'idalloc_one()' : "idalloc_one('$alloc')";
}

# $n IDs of $alloc in a new session of database "up" (and a batch of 3);
# recorded.  Returns the IDs, or () with a failed assertion on an error.
sub take
{
	my ($alloc, $n, $where) = @_;
	my $call = call_one($alloc);
	my ($ret, $out, $err) = $node->psql(
		'up', qq{
		SELECT $call FROM generate_series(1, $n);
		SELECT start_id || ':' || end_id FROM idalloc_batch('$alloc', 3);});
	my @ids;
	for my $v (lines($out))
	{
		if ($v =~ /^(-?\d+):(-?\d+)$/)
		{
			$ids->add_range($alloc, $where, $1, $2);
			push @ids, $1 .. $2 - 1;
		}
		elsif ($v =~ /^-?\d+$/)
		{
			$ids->add_ids($alloc, $where, $v);
			push @ids, $v;
		}
	}
	if ($ret != 0 || @ids != $n + 3)
	{
		fail("$where: $n + 3 IDs of $alloc");
		diag $err;
		return ();
	}
	return @ids;
}

sub min_of { my $m; for (@_) { $m = $_ if !defined $m || $_ < $m; } return $m; }

# Every ID of each allocator taken now ($k sessions) is above every ID
# recorded before.
sub check_above
{
	my ($tag, $k, @allocs) = @_;
	for my $alloc (@allocs)
	{
		my $max = $ids->max($alloc);
		my @new = map { take($alloc, 4, "$tag/s$_") } 1 .. $k;
		cmp_ok(min_of(@new) // -1, '>', $max,
			"$tag: every new ID of $alloc is above every earlier one ($max)");
	}
	return;
}

sub state_of
{
	my ($db, $sql) = @_;
	my ($ret, $out, $err) = $node->psql($db, $sql);
	return ($ret, $out, $err);
}

############################################################################
# (a) 1.0 objects with the new library
my ($ret, $out, $err) = state_of('up', q{CREATE EXTENSION idalloc VERSION '1.0'});
is($ret, 0, "(a) CREATE EXTENSION idalloc VERSION '1.0'") or diag $err;
is($node->safe_psql('up', q{SELECT extversion FROM pg_extension WHERE extname = 'idalloc'}),
	'1.0', '(a) extversion is 1.0');

($ret, $out, $err) = state_of(
	'up', q{
	SELECT idalloc_create('named', start => 1000, block => 10);
	SELECT idalloc_create('cached', start => 50000, block => 20, cache => 5);
	SELECT idalloc_create('doomed', block => 3);});
is($ret, 0, '(a) 1.0: idalloc_create (plain, cached) works') or diag $err;
take('default', 20, '(a) 1.0');
take('named',   25, '(a) 1.0');    # several blocks
take('cached',  7,  "(a) 1.0/s$_") for 1 .. 3;
take('doomed',  4,  '(a) 1.0');
($ret, $out, $err) = state_of('up', q{SELECT idalloc_drop('doomed')});
is($ret, 0, '(a) 1.0: idalloc_drop works') or diag $err;
($ret, $out, $err) = state_of('up',
	q{SELECT idalloc_alter('named', block => 12); SELECT idalloc_sync('named');});
is($ret, 0, '(a) 1.0: idalloc_alter and idalloc_sync work') or diag $err;
($ret, $out, $err) = state_of('up',
	q{SELECT string_agg(name, ',' ORDER BY name) FROM idalloc_allocators});
is($out, 'cached,default,named', '(a) 1.0: the idalloc_allocators view works with the new library')
  or diag $err;
($ret, $out, $err) = state_of('up', q{SELECT count(*) FROM idalloc_caches});
is($ret, 0, '(a) 1.0: the idalloc_caches view works with the new library') or diag $err;
is(join("\n", $ids->repeats), '', '(a) 1.0: no ID handed out twice');

############################################################################
# (b) ALTER EXTENSION idalloc UPDATE, with a session holding a cached range
my $holder = $node->background_psql('up');
my @held = lines($holder->query_safe(q{SELECT idalloc_one('cached') FROM generate_series(1, 2)}));
$ids->add_ids('cached', '(b) holder before', @held);

($ret, $out, $err) = state_of('up', 'ALTER EXTENSION idalloc UPDATE');
is($ret, 0, '(b) ALTER EXTENSION idalloc UPDATE') or diag $err;
is($node->safe_psql('up', q{SELECT extversion FROM pg_extension WHERE extname = 'idalloc'}),
	'1.2', '(b) extversion is 1.2 after the update');
is( $node->safe_psql('up',
		q{SELECT path FROM pg_extension_update_paths('idalloc')
		   WHERE source = '1.0' AND target = '1.1'}),
	'1.0--1.1', '(b) the update path 1.0--1.1 is a direct script');
is( $node->safe_psql('up',
		q{SELECT path FROM pg_extension_update_paths('idalloc')
		   WHERE source = '1.0' AND target = '1.2'}),
	'1.0--1.1--1.2', '(b) and 1.0 reaches 1.2 through 1.1');

# the holder goes on (its range, then new ones), strictly increasing
my @more;
eval {
	@more = lines($holder->query_safe(
		q{SELECT idalloc_one('cached') FROM generate_series(1, 12)}));
};
is(scalar(@more), 12, '(b) the session that held a cached range goes on after the update')
  or diag $@;
$ids->add_ids('cached', '(b) holder after', @more);
is_deeply([ @more ], [ sort { $a <=> $b } @more ],
	'(b) its IDs keep increasing');
cmp_ok($more[0] // -1, '>', $held[-1], '(b) above what it had before the update');
eval { $holder->quit; };

check_above('(b) after the update', 3, qw(default named cached));
($ret, $out, $err) = state_of('up',
	q{SELECT idalloc_create('after_update', block => 4);
	  SELECT idalloc_one('after_update') FROM generate_series(1, 9);});
is($ret, 0, '(b) idalloc_create works after the update') or diag $err;
$ids->add_ids('after_update', '(b)', lines($out));
($ret, $out, $err) = state_of('up', q{SELECT idalloc_one('doomed')});
isnt($ret, 0, '(b) the allocator dropped before the update stays dropped');

$node->restart;
check_above('(b) after a clean restart', 2, qw(default named cached after_update));
$node->stop('immediate');
$node->start;
check_above('(b) after an immediate restart', 2, qw(default named cached after_update));
is(join("\n", $ids->repeats), '', '(b) no ID handed out twice across the update and restarts');

############################################################################
# (c) the upgraded objects equal a fresh 1.2 install
($ret, $out, $err) = state_of('fresh', 'CREATE EXTENSION idalloc');
is($ret, 0, '(c) CREATE EXTENSION idalloc in database fresh') or diag $err;
is($node->safe_psql('fresh', q{SELECT extversion FROM pg_extension WHERE extname = 'idalloc'}),
	'1.2', '(c) a fresh install is 1.2');
# 1.1 in use (an allocator and IDs), then updated by its direct script
($ret, $out, $err) = state_of('up11', q{
	CREATE EXTENSION idalloc VERSION '1.1';
	SELECT idalloc_create('named', block => 10);
	SELECT idalloc_one('named') FROM generate_series(1, 15);});
is($ret, 0, "(c) CREATE EXTENSION idalloc VERSION '1.1' in database up11, in use") or diag $err;
my @up11_before = lines($out);
($ret, $out, $err) = state_of('up11', 'ALTER EXTENSION idalloc UPDATE');
is($ret, 0, '(c) ALTER EXTENSION idalloc UPDATE from 1.1') or diag $err;
is( $node->safe_psql('up11',
		q{SELECT extversion || ' ' || (SELECT path FROM pg_extension_update_paths('idalloc')
		   WHERE source = '1.1' AND target = '1.2')
		   FROM pg_extension WHERE extname = 'idalloc'}),
	'1.2 1.1--1.2', '(c) up11 is 1.2, through the direct script 1.1--1.2');
cmp_ok($node->safe_psql('up11', q{SELECT idalloc_one('named')}), '>', $up11_before[-1] // 0,
	'(c) up11 allocates above what it handed out before the update');

# An ACL as sorted "grantee=privilege[*]/grantor" items, the owner shown as
# OWNER and PUBLIC as PUBLIC; NULL (the default) expanded.
sub acl_sql
{
	my ($acl, $owner, $type) = @_;
	return qq{(SELECT coalesce(string_agg(x, ' ' ORDER BY x), '')
	  FROM (SELECT CASE WHEN a.grantee = $owner THEN 'OWNER'
	                    WHEN a.grantee = 0 THEN 'PUBLIC'
	                    ELSE pg_get_userbyid(a.grantee) END
	               || '=' || a.privilege_type
	               || CASE WHEN a.is_grantable THEN '*' ELSE '' END
	               || '/' || CASE WHEN a.grantor = $owner THEN 'OWNER'
	                              ELSE pg_get_userbyid(a.grantor) END AS x
	          FROM aclexplode(coalesce($acl, acldefault('$type', $owner))) a) acl)};
}

my $members = q{(SELECT classid, objid, objsubid FROM pg_depend
                  WHERE refclassid = 'pg_extension'::regclass
                    AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'idalloc')
                    AND deptype = 'e')};
my $member_rels = qq{(SELECT objid FROM $members m WHERE m.classid = 'pg_class'::regclass)};
my $proc_acl = acl_sql('p.proacl', 'p.proowner', 'f');
my $rel_acl = acl_sql('c.relacl', 'c.relowner', 'r');
my $seq_acl = acl_sql('c.relacl', 'c.relowner', 's');

my %sections = (
	'extension' => q{
	SELECT extname || ' version=' || extversion
	       || ' schema=' || extnamespace::regnamespace
	       || ' relocatable=' || extrelocatable
	  FROM pg_extension WHERE extname = 'idalloc'},
	'member' => qq{
	SELECT pg_describe_object(classid, objid, objsubid) FROM $members m},
	'function' => qq{
	SELECT p.oid::regprocedure || ' (' || pg_get_function_arguments(p.oid) || ')'
	       || ' returns ' || coalesce(pg_get_function_result(p.oid), '')
	       || ' kind=' || p.prokind::text
	       || ' language=' || l.lanname
	       || ' volatile=' || p.provolatile::text
	       || ' strict=' || p.proisstrict
	       || ' parallel=' || p.proparallel::text
	       || ' secdef=' || p.prosecdef
	       || ' leakproof=' || p.proleakproof
	       || ' retset=' || p.proretset
	       || ' cost=' || p.procost || ' rows=' || p.prorows
	       || ' src=' || btrim(regexp_replace(p.prosrc, '\\s+', ' ', 'g'))
	       || ' bin=' || coalesce(p.probin, '')
	       || ' config=' || coalesce(array_to_string(p.proconfig, ','), '')
	       || ' acl=' || $proc_acl
	  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
	 WHERE p.oid IN (SELECT objid FROM $members m WHERE m.classid = 'pg_proc'::regclass)},
	'relation' => qq{
	SELECT c.relname || ' kind=' || c.relkind::text
	       || ' persistence=' || c.relpersistence::text
	       || ' replident=' || c.relreplident::text
	       || ' rowsecurity=' || c.relrowsecurity || '/' || c.relforcerowsecurity
	       || ' options=' || coalesce(c.reloptions::text, '')
	       || ' acl=' || CASE WHEN c.relkind = 'S' THEN $seq_acl ELSE $rel_acl END
	  FROM pg_class c WHERE c.oid IN $member_rels},
	'column' => q{
	SELECT c.relname || '.' || a.attnum || ' ' || a.attname
	       || ' ' || format_type(a.atttypid, a.atttypmod)
	       || ' notnull=' || a.attnotnull
	       || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
	       || ' collation=' || coalesce(co.collname, '')
	       || ' identity=' || a.attidentity::text || ' generated=' || a.attgenerated::text
	       || ' acl=' || coalesce(a.attacl::text, '')
	  FROM pg_attribute a
	  JOIN pg_class c ON c.oid = a.attrelid
	  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
	  LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 0
	 WHERE a.attnum > 0 AND NOT a.attisdropped
	   AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
	   AND c.oid IN } . $member_rels,
	'constraint' => qq{
	SELECT conrelid::regclass || ' ' || conname || ' ' || contype::text
	       || ' ' || pg_get_constraintdef(oid)
	       || ' deferrable=' || condeferrable || '/' || condeferred
	       || ' valid=' || convalidated
	  FROM pg_constraint WHERE conrelid IN $member_rels},
	'index' => qq{
	SELECT i.indexrelid::regclass || ' ' || pg_get_indexdef(i.indexrelid)
	       || ' primary=' || i.indisprimary
	       || ' replident=' || i.indisreplident
	  FROM pg_index i WHERE i.indrelid IN $member_rels},
	'sequence' => qq{
	SELECT s.seqrelid::regclass || ' ' || format_type(s.seqtypid, NULL)
	       || ' start=' || s.seqstart || ' inc=' || s.seqincrement
	       || ' min=' || s.seqmin || ' max=' || s.seqmax
	       || ' cache=' || s.seqcache || ' cycle=' || s.seqcycle
	       || ' owned_by=' || coalesce((SELECT d.refobjid::regclass || '.' || d.refobjsubid
	                                      FROM pg_depend d
	                                     WHERE d.classid = 'pg_class'::regclass
	                                       AND d.objid = s.seqrelid AND d.deptype IN ('a', 'i')
	                                       AND d.refclassid = 'pg_class'::regclass), '')
	  FROM pg_sequence s WHERE s.seqrelid IN $member_rels},
	'trigger' => qq{
	SELECT t.tgrelid::regclass || ' ' || t.tgname
	       || ' enabled=' || t.tgenabled::text
	       || ' type=' || t.tgtype
	       || ' function=' || t.tgfoid::regprocedure
	       || ' def=' || pg_get_triggerdef(t.oid)
	  FROM pg_trigger t WHERE NOT t.tgisinternal AND t.tgrelid IN $member_rels},
	'view' => qq{
	SELECT c.relname || ' ' || regexp_replace(pg_get_viewdef(c.oid), '\\s+', ' ', 'g')
	  FROM pg_class c WHERE c.relkind IN ('v', 'm') AND c.oid IN $member_rels},
	'event trigger' => qq{
	SELECT e.evtname || ' event=' || e.evtevent || ' enabled=' || e.evtenabled::text
	       || ' function=' || e.evtfoid::regprocedure
	       || ' tags=' || coalesce(array_to_string(e.evttags, ','), '')
	  FROM pg_event_trigger e
	 WHERE e.oid IN (SELECT objid FROM $members m WHERE m.classid = 'pg_event_trigger'::regclass)},
	'policy' => qq{
	SELECT p.polrelid::regclass || ' ' || p.polname || ' cmd=' || p.polcmd::text
	       || ' permissive=' || p.polpermissive
	       || ' roles=' || array_to_string(p.polroles::regrole[], ',')
	       || ' using=' || coalesce(pg_get_expr(p.polqual, p.polrelid), '')
	       || ' check=' || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')
	  FROM pg_policy p WHERE p.polrelid IN $member_rels},
	'rule' => qq{
	SELECT r.ev_class::regclass || ' ' || r.rulename || ' ' || pg_get_ruledef(r.oid)
	  FROM pg_rewrite r WHERE r.rulename <> '_RETURN' AND r.ev_class IN $member_rels},
	'comment' => qq{
	SELECT pg_describe_object(d.classoid, d.objoid, d.objsubid) || ' = ' || d.description
	  FROM pg_description d
	 WHERE (d.classoid, d.objoid) IN (SELECT classid, objid FROM $members m)},
	'extconfig' => q{
	SELECT u.c::regclass || ' condition=' || coalesce(u.cond, '<null>')
	  FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS u(c, cond)
	 WHERE e.extname = 'idalloc'},);

sub section_lines
{
	my ($db, $sql) = @_;
	my ($r, $o, $e) = $node->psql($db, "SELECT x FROM ($sql) s(x) ORDER BY 1");
	return ("<query failed: $e>") if $r != 0;
	return lines($o);
}

for my $updated (qw(up up11))
{
for my $section (sort keys %sections)
{
	my @up = section_lines($updated, $sections{$section});
	my @fresh = section_lines('fresh', $sections{$section});
	my %in_up = map { $_ => 1 } @up;
	my %in_fresh = map { $_ => 1 } @fresh;
	my @only_up = grep { !$in_fresh{$_} } @up;
	my @only_fresh = grep { !$in_up{$_} } @fresh;
	my $what = $section eq 'extension' ? 'extension (version aside)' : $section;
	if (my @failed = grep { /^<query failed/ } @up, @fresh)
	{
		fail("(c) $updated, $what: the upgraded installation equals a fresh one");
		diag "catalog query failed: @failed";
		next;
	}
	if ($section eq 'extension')
	{
		# the version was checked above; compare the rest
		s/ version=\S+// for @up, @fresh;
	}
	is(join("\n", @up), join("\n", @fresh),
		"(c) $updated, $what: the upgraded installation equals a fresh one")
	  or diag "only after the upgrade:\n  "
	  . join("\n  ", @only_up)
	  . "\nonly in a fresh install:\n  "
	  . join("\n  ", @only_fresh);
}
}
# the comparison saw the objects it is about
my %count = map { $_ => scalar(section_lines('fresh', $sections{$_})) } qw(function trigger view);
cmp_ok($count{function}, '>=', 12, "(c) the comparison covers the functions ($count{function})");
cmp_ok($count{trigger}, '>=', 5, "(c) the comparison covers the triggers ($count{trigger}), the conninfo table's guard among them");
cmp_ok($count{view}, '>=', 2, "(c) the comparison covers the views ($count{view})");

############################################################################
# (e) a user's view on idalloc_allocators, and a grant on it, survive the
# update (the view is replaced with columns added at its end, not dropped)
$node->safe_psql('postgres', 'CREATE DATABASE dep');
$node->safe_psql('dep', q{
	CREATE EXTENSION idalloc VERSION '1.0';
	CREATE ROLE dep_reader;
	GRANT SELECT ON idalloc_allocators TO dep_reader;
	CREATE ROLE dep_admin;
	GRANT EXECUTE ON FUNCTION idalloc_create(text, bigint, bigint, integer, text, text) TO dep_admin;
	CREATE VIEW mon AS SELECT name, next_id FROM idalloc_allocators;
	SELECT idalloc_one();});
($ret, $out, $err) = state_of('dep', 'ALTER EXTENSION idalloc UPDATE');
is($ret, 0, '(e) the update succeeds with a user view depending on idalloc_allocators')
  or diag $err;
# idalloc_create is made anew (it gained if_not_exists): EXECUTE granted
# on the old one is named in a WARNING, not silently lost
like($err, qr/WARNING:  EXECUTE on idalloc_create\(text,bigint,bigint,integer,text,text\) granted to dep_admin does not carry over/,
	'(e) the update warns that EXECUTE on the old idalloc_create granted to dep_admin does not carry over');
is($node->safe_psql('dep',
		q{SELECT has_function_privilege('dep_admin', 'idalloc_create(text, bigint, bigint, integer, text, text, boolean)', 'EXECUTE')}),
	'f', '(e) (and it did not: granted in the script it would not be dumped)');
is($node->safe_psql('dep', q{SELECT name || ':' || next_id FROM mon}),
	'default:2', '(e) the user view still works');
is($node->safe_psql('dep',
		q{SELECT has_table_privilege('dep_reader', 'idalloc_allocators', 'SELECT')}),
	't', '(e) the grant on idalloc_allocators is kept');
is($node->safe_psql('dep', q{SELECT step, waits FROM idalloc_allocators WHERE name = 'default'}),
	'200000|1', '(e) and the view has the 1.1 columns step and waits (the first call waited for the first block)');

$node->stop;
done_testing();
