-- Each database has its own allocators; slots are keyed by (database,
-- identity), never by name; idalloc.max_allocators is cluster-wide and
-- slots of dropped allocators, extensions and databases are reclaimed.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS idalloc;
RESET client_min_messages;
SELECT current_database() AS db1 \gset

-- fill(): create allocators until idalloc.max_allocators is reached,
-- report the error, drop them again; returns how many could be created
CREATE FUNCTION fill() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer := 0;
BEGIN
    LOOP
        BEGIN
            PERFORM idalloc_create('fill_' || n);
        EXCEPTION WHEN configuration_limit_exceeded THEN
            RAISE NOTICE 'limit reached: % %', SQLSTATE, SQLERRM;
            EXIT;
        END;
        n := n + 1;
    END LOOP;
    PERFORM idalloc_drop(name) FROM idalloc_registry WHERE name LIKE 'fill\_%';
    RETURN n;
END $$;

SELECT fill() AS free_slots \gset
SELECT :free_slots > 0 AS some_free;
-- dropped allocators gave their slots back
SELECT fill() = :free_slots AS reclaimed_after_drop;

SELECT idalloc_create('same_name', start => 100, block => 3);
SELECT idalloc_one('same_name'), idalloc_one('same_name');

CREATE DATABASE idalloc_db2;
\c idalloc_db2
SET client_min_messages = warning;
CREATE EXTENSION idalloc;
RESET client_min_messages;
-- a fresh default, independent of the other database's
SELECT idalloc_one() AS db2_default;
-- the other database's allocator is not visible here
SELECT idalloc_one('same_name');
SELECT idalloc_create('same_name', start => 100, block => 3);
SELECT idalloc_one('same_name') AS db2_same_name;

\c :db1
-- unaffected by the allocator of the same name in idalloc_db2
SELECT idalloc_one('same_name') AS db1_same_name;
-- slots in use since free_slots was measured: same_name here, and
-- default and same_name of idalloc_db2
SELECT :free_slots - fill() AS slots_in_use;

\c idalloc_db2
SELECT idalloc_drop('same_name');
\c :db1
SELECT idalloc_one('same_name') AS db1_still_works;
SELECT :free_slots - fill() AS slots_in_use;

-- DROP EXTENSION releases the database's slots; a new CREATE EXTENSION
-- starts a new default (no stale state reused)
\c idalloc_db2
SELECT idalloc_one() AS db2_default;
SELECT idalloc_create('gone', block => 2);
SELECT idalloc_one('gone');
DROP EXTENSION idalloc;
\c :db1
SELECT :free_slots - fill() AS slots_in_use;
\c idalloc_db2
SET client_min_messages = warning;
CREATE EXTENSION idalloc;
RESET client_min_messages;
SELECT idalloc_one() AS db2_new_default;
SELECT idalloc_one('gone');

-- a rolled-back CREATE EXTENSION that was used leaves no slot behind
\c :db1
SELECT :free_slots - fill() AS slots_in_use;
\c idalloc_db2
DROP EXTENSION idalloc;
BEGIN;
CREATE EXTENSION idalloc;
SELECT idalloc_one();
ROLLBACK;
\c :db1
SELECT :free_slots - fill() AS slots_in_use;

-- DROP DATABASE releases its slots
\c idalloc_db2
SET client_min_messages = warning;
CREATE EXTENSION idalloc;
RESET client_min_messages;
SELECT idalloc_one();
\c :db1
SELECT :free_slots - fill() AS slots_in_use;
DROP DATABASE idalloc_db2 WITH (FORCE);
SELECT :free_slots - fill() AS slots_in_use;

SELECT idalloc_drop('same_name');
DROP FUNCTION fill();
