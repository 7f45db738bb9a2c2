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
