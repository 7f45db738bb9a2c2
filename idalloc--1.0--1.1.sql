/* idalloc--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION idalloc UPDATE TO '1.1'" to load this file. \quit

--
-- Hardening (issue 7).  Every change here is also in idalloc--1.1.sql;
-- t/014_upgrade.pl compares an updated installation with a fresh one.
--

-- The trigger functions are for idalloc's own triggers only: nobody else
-- may attach them to a table (CREATE TRIGGER needs EXECUTE).
REVOKE ALL ON FUNCTION @extschema@.idalloc_registry_insert() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.idalloc_registry_guard() FROM PUBLIC;

-- The guards fire whatever session_replication_role is (logical apply
-- workers run as "replica"; their rows are merged, see src/triggers.c).
ALTER TABLE @extschema@.idalloc_registry
    ENABLE ALWAYS TRIGGER idalloc_registry_insert;
ALTER TABLE @extschema@.idalloc_registry
    ENABLE ALWAYS TRIGGER idalloc_registry_guard;
ALTER TABLE @extschema@.idalloc_registry
    ENABLE ALWAYS TRIGGER idalloc_registry_guard_truncate;

-- A subscriber finds a replicated row by allocator name: registry ids come
-- from each server's own sequence and mean nothing elsewhere.
ALTER TABLE @extschema@.idalloc_registry
    REPLICA IDENTITY USING INDEX idalloc_registry_name_key;

--
-- 1.1: each allocator's step and waits (G7).  A function of its own and
-- columns added at the end of the view, so that the update from 1.0
-- replaces the view (CREATE OR REPLACE VIEW) instead of dropping it: views
-- and grants of users that depend on it survive the update.
--
CREATE FUNCTION @extschema@.idalloc_allocator_steps(OUT id bigint,
    OUT step bigint, OUT waits bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'idalloc_allocator_steps'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

CREATE OR REPLACE VIEW @extschema@.idalloc_allocators AS
    SELECT r.name,
           r.kind,
           r.start,
           r.block,
           r.cache,
           COALESCE(s.next_id, r.persisted_end) AS next_id,
           COALESCE(s.persisted_until, r.persisted_end) AS persisted_until,
           COALESCE(s.allocated, 0) AS allocated,
           COALESCE(s.block_advances, 0) AS block_advances,
           COALESCE(s.cached_ranges, 0) AS cached_ranges,
           COALESCE(t.step, r.block) AS step,
           COALESCE(t.waits, 0) AS waits,
           r.source
      FROM @extschema@.idalloc_registry r
      LEFT JOIN @extschema@.idalloc_allocator_state() s ON s.id = r.id
      LEFT JOIN @extschema@.idalloc_allocator_steps() t ON t.id = r.id;

--
-- tso IDs: (unix_ms << 18) + logical.  Pure functions of their argument.
--
CREATE FUNCTION @extschema@.idalloc_tso_decode(id bigint)
RETURNS TABLE (physical timestamptz, logical integer)
AS 'MODULE_PATHNAME', 'idalloc_tso_decode'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 1;

CREATE FUNCTION @extschema@.idalloc_tso_from(ts timestamptz)
RETURNS bigint
AS 'MODULE_PATHNAME', 'idalloc_tso_from'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

--
-- 1.1: sources (issue 10).  The conninfo of a sourced allocator, password
-- included: readable by superusers only (no privilege for anyone else) and
-- not dumped.  idalloc_registry.source (readable by PUBLIC, dumped, shown
-- by the view) holds only the authority's host, port and database name.
--
CREATE TABLE @extschema@.idalloc_source_conninfo (
    id          bigint  NOT NULL PRIMARY KEY,
    conninfo    text    NOT NULL
);
REVOKE ALL ON @extschema@.idalloc_source_conninfo FROM PUBLIC;
-- row security with no policy: members of pg_read_all_data (which bypasses
-- privileges, not row security) see no row either; superusers and the
-- owner (idalloc's own reads run as the owner) see them all
ALTER TABLE @extschema@.idalloc_source_conninfo ENABLE ROW LEVEL SECURITY;
COMMENT ON TABLE @extschema@.idalloc_source_conninfo IS
    'idalloc: conninfo of sourced allocators (superusers only); use idalloc_create/idalloc_alter';

-- idalloc_alter gains source (a sourced allocator's authority) and
-- idalloc_create if_not_exists: both are made anew.  EXECUTE granted on the
-- old ones does not carry over (granted here it would count as the
-- extension's own privilege, and pg_dump would leave it out): name each
-- role that must be granted it again.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT p.oid::pg_catalog.regprocedure AS fn,
               a.grantee::pg_catalog.regrole AS grantee
          FROM pg_catalog.pg_proc p,
               LATERAL pg_catalog.aclexplode(p.proacl) a
         WHERE p.pronamespace OPERATOR(pg_catalog.=)
               (SELECT e.extnamespace FROM pg_catalog.pg_extension e
                 WHERE e.extname OPERATOR(pg_catalog.=) 'idalloc')
           AND ((p.proname OPERATOR(pg_catalog.=) 'idalloc_create'
                 AND p.pronargs OPERATOR(pg_catalog.=) 6)
                OR (p.proname OPERATOR(pg_catalog.=) 'idalloc_alter'
                    AND p.pronargs OPERATOR(pg_catalog.=) 3))
           AND a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE'
           AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
           AND a.grantee OPERATOR(pg_catalog.<>) 0
    LOOP
        RAISE WARNING 'EXECUTE on % granted to % does not carry over to its new signature',
            r.fn, r.grantee
            USING HINT = 'Grant it again on the function with the new arguments.';
    END LOOP;
END
$$;

DROP FUNCTION @extschema@.idalloc_create(text, bigint, bigint, integer, text, text);
CREATE FUNCTION @extschema@.idalloc_create(allocator text,
                                           start bigint DEFAULT 1,
                                           block bigint DEFAULT NULL,
                                           cache integer DEFAULT 1,
                                           kind text DEFAULT 'counter',
                                           source text DEFAULT NULL,
                                           if_not_exists boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'idalloc_create'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION @extschema@.idalloc_create(text, bigint, bigint, integer, text, text, boolean) FROM PUBLIC;

DROP FUNCTION @extschema@.idalloc_alter(text, bigint, integer);
CREATE FUNCTION @extschema@.idalloc_alter(allocator text,
                                          block bigint DEFAULT NULL,
                                          cache integer DEFAULT NULL,
                                          source text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'idalloc_alter'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION @extschema@.idalloc_alter(text, bigint, integer, text) FROM PUBLIC;

-- pg_dump run by a non-superuser reads the registry's sequence (a config
-- table's sequence is dumped with it): its value is only the last registry
-- id, so reading it is granted; nextval/setval (USAGE, UPDATE) are not.
GRANT SELECT ON SEQUENCE @extschema@.idalloc_registry_id_seq TO PUBLIC;
