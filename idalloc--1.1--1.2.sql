/* idalloc--1.1--1.2.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION idalloc UPDATE TO '1.2'" to load this file. \quit

-- Every change here is also in idalloc--1.2.sql; t/014_upgrade.pl compares
-- an updated installation with a fresh one.
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
