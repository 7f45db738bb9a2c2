/* idalloc--1.2.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION idalloc" to load this file. \quit

--
-- The catalog table: one row per allocator.  The C code only ever inserts
-- and deletes rows transactionally; persisted_end, block and cache are
-- overwritten in place (non-transactional, WAL-logged, flushed), never by
-- UPDATE.  Fixed-width columns come first (see src/idalloc.h).
--
CREATE SEQUENCE @extschema@.idalloc_registry_id_seq;

CREATE TABLE @extschema@.idalloc_registry (
    id              bigint  NOT NULL
                    DEFAULT nextval('@extschema@.idalloc_registry_id_seq'),
    start           bigint  NOT NULL,
    block           bigint  NOT NULL CHECK (block >= 1),
    persisted_end   bigint  NOT NULL,
    cache           integer NOT NULL CHECK (cache >= 1),
    name            text    COLLATE "C" NOT NULL
                    CHECK (octet_length(name) BETWEEN 1 AND 63),
    kind            text    NOT NULL CHECK (kind IN ('counter', 'tso')),
    source          text,
    CONSTRAINT idalloc_registry_pkey PRIMARY KEY (id),
    CONSTRAINT idalloc_registry_name_key UNIQUE (name),
    CHECK (persisted_end >= start)
);

ALTER SEQUENCE @extschema@.idalloc_registry_id_seq
    OWNED BY @extschema@.idalloc_registry.id;

COMMENT ON TABLE @extschema@.idalloc_registry IS
    'idalloc allocators; use idalloc_create/idalloc_drop, never write it directly';

-- A subscriber finds a replicated row by allocator name: registry ids come
-- from each server's own sequence and mean nothing elsewhere.
ALTER TABLE @extschema@.idalloc_registry
    REPLICA IDENTITY USING INDEX idalloc_registry_name_key;

-- pg_dump keeps the rows and the sequence
SELECT pg_catalog.pg_extension_config_dump('@extschema@.idalloc_registry', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.idalloc_registry_id_seq', '');

-- The triggers (src/triggers.c).  Their functions are for these triggers
-- only: nobody else may attach them to a table (CREATE TRIGGER needs
-- EXECUTE), and they check that they fire on this table, by OID.  They
-- are ENABLE ALWAYS: they fire whatever session_replication_role is
-- (logical apply workers run as "replica"; their rows are merged).

-- Passes the extension's own inserts; merges restored and replicated rows.
-- Also makes CREATE EXTENSION fail (55000) without shared_preload_libraries.
CREATE FUNCTION @extschema@.idalloc_registry_insert()
RETURNS trigger
AS 'MODULE_PATHNAME', 'idalloc_registry_insert'
LANGUAGE C;
REVOKE ALL ON FUNCTION @extschema@.idalloc_registry_insert() FROM PUBLIC;

CREATE TRIGGER idalloc_registry_insert
    BEFORE INSERT ON @extschema@.idalloc_registry
    FOR EACH ROW EXECUTE FUNCTION @extschema@.idalloc_registry_insert();

-- Refuses UPDATE, DELETE and TRUNCATE that do not come from idalloc itself.
CREATE FUNCTION @extschema@.idalloc_registry_guard()
RETURNS trigger
AS 'MODULE_PATHNAME', 'idalloc_registry_guard'
LANGUAGE C;
REVOKE ALL ON FUNCTION @extschema@.idalloc_registry_guard() FROM PUBLIC;

CREATE TRIGGER idalloc_registry_guard
    BEFORE UPDATE OR DELETE ON @extschema@.idalloc_registry
    FOR EACH ROW EXECUTE FUNCTION @extschema@.idalloc_registry_guard();

CREATE TRIGGER idalloc_registry_guard_truncate
    BEFORE TRUNCATE ON @extschema@.idalloc_registry
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.idalloc_registry_guard();

ALTER TABLE @extschema@.idalloc_registry
    ENABLE ALWAYS TRIGGER idalloc_registry_insert;
ALTER TABLE @extschema@.idalloc_registry
    ENABLE ALWAYS TRIGGER idalloc_registry_guard;
ALTER TABLE @extschema@.idalloc_registry
    ENABLE ALWAYS TRIGGER idalloc_registry_guard_truncate;

--
-- Allocation
--
CREATE FUNCTION @extschema@.idalloc_one()
RETURNS bigint
AS 'MODULE_PATHNAME', 'idalloc_one_default'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

CREATE FUNCTION @extschema@.idalloc_one(allocator text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'idalloc_one'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

CREATE FUNCTION @extschema@.idalloc_batch(count bigint)
RETURNS TABLE (start_id bigint, end_id bigint)
AS 'MODULE_PATHNAME', 'idalloc_batch_default'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE ROWS 1;

CREATE FUNCTION @extschema@.idalloc_batch(allocator text, count bigint)
RETURNS TABLE (start_id bigint, end_id bigint)
AS 'MODULE_PATHNAME', 'idalloc_batch'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE ROWS 1;

--
-- Management (not for PUBLIC)
--
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

CREATE FUNCTION @extschema@.idalloc_drop(allocator text)
RETURNS void
AS 'MODULE_PATHNAME', 'idalloc_drop'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION @extschema@.idalloc_alter(allocator text,
                                          block bigint DEFAULT NULL,
                                          cache integer DEFAULT NULL,
                                          source text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'idalloc_alter'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION @extschema@.idalloc_advance(allocator text, next_id bigint)
RETURNS bigint
AS 'MODULE_PATHNAME', 'idalloc_advance'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

REVOKE ALL ON FUNCTION @extschema@.idalloc_create(text, bigint, bigint, integer, text, text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.idalloc_drop(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.idalloc_alter(text, bigint, integer, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.idalloc_advance(text, bigint) FROM PUBLIC;

CREATE FUNCTION @extschema@.idalloc_sync(allocator text)
RETURNS void
AS 'MODULE_PATHNAME', 'idalloc_sync'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

--
-- Observability
--
CREATE FUNCTION @extschema@.idalloc_allocator_state(OUT id bigint,
    OUT next_id bigint, OUT persisted_until bigint, OUT allocated bigint,
    OUT block_advances bigint, OUT cached_ranges bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'idalloc_allocator_state'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

CREATE FUNCTION @extschema@.idalloc_cache_state(OUT pid integer,
    OUT id bigint, OUT next_id bigint, OUT end_id bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'idalloc_cache_state'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

-- allocators of this database; next_id and persisted_until of one that is
-- not loaded in shared memory yet are where it resumes
CREATE VIEW @extschema@.idalloc_allocators AS
    SELECT r.name,
           r.kind,
           r.start,
           r.block,
           r.cache,
           COALESCE(s.next_id, r.persisted_end) AS next_id,
           COALESCE(s.persisted_until, r.persisted_end) AS persisted_until,
           COALESCE(s.allocated, 0) AS allocated,
           COALESCE(s.block_advances, 0) AS block_advances,
           COALESCE(s.cached_ranges, 0) AS cached_ranges
      FROM @extschema@.idalloc_registry r
      LEFT JOIN @extschema@.idalloc_allocator_state() s ON s.id = r.id;

-- every backend's cached range [next_id, end_id) in this database
CREATE VIEW @extschema@.idalloc_caches AS
    SELECT c.pid, r.name AS allocator, c.next_id, c.end_id
      FROM @extschema@.idalloc_cache_state() c
      JOIN @extschema@.idalloc_registry r ON r.id = c.id;

REVOKE ALL ON @extschema@.idalloc_registry FROM PUBLIC;
GRANT SELECT ON @extschema@.idalloc_registry TO PUBLIC;
GRANT SELECT ON @extschema@.idalloc_allocators TO PUBLIC;
GRANT SELECT ON @extschema@.idalloc_caches TO PUBLIC;

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

-- the allocator every database starts with
INSERT INTO @extschema@.idalloc_registry (name, start, block, persisted_end, cache, kind)
    VALUES ('default', 1, 200000, 1, 1, 'counter');

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

-- pg_dump run by a non-superuser reads the registry's sequence (a config
-- table's sequence is dumped with it): its value is only the last registry
-- id, so reading it is granted; nextval/setval (USAGE, UPDATE) are not.
GRANT SELECT ON SEQUENCE @extschema@.idalloc_registry_id_seq TO PUBLIC;

--
-- 1.2: the conninfo table's guard (issue 17).  A conninfo is written by
-- idalloc_create and idalloc_alter of this server only, and never leaves
-- it: rows that a logical-replication subscription brings (a publication
-- FOR ALL TABLES carries the table) are skipped, whether applied or copied
-- by the table sync, and every other direct write is refused (42501).
-- ENABLE ALWAYS, as the registry's triggers: apply workers run as
-- "replica".  The function is for these triggers only.
--
CREATE FUNCTION @extschema@.idalloc_source_conninfo_guard()
RETURNS trigger
AS 'MODULE_PATHNAME', 'idalloc_source_conninfo_guard'
LANGUAGE C;
REVOKE ALL ON FUNCTION @extschema@.idalloc_source_conninfo_guard() FROM PUBLIC;

CREATE TRIGGER idalloc_source_conninfo_guard
    BEFORE INSERT OR UPDATE OR DELETE ON @extschema@.idalloc_source_conninfo
    FOR EACH ROW EXECUTE FUNCTION @extschema@.idalloc_source_conninfo_guard();

CREATE TRIGGER idalloc_source_conninfo_guard_truncate
    BEFORE TRUNCATE ON @extschema@.idalloc_source_conninfo
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.idalloc_source_conninfo_guard();

ALTER TABLE @extschema@.idalloc_source_conninfo
    ENABLE ALWAYS TRIGGER idalloc_source_conninfo_guard;
ALTER TABLE @extschema@.idalloc_source_conninfo
    ENABLE ALWAYS TRIGGER idalloc_source_conninfo_guard_truncate;
