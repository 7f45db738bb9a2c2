-- 1.1 hardening: nothing a user can create reaches idalloc's state, the
-- guards hold in every session_replication_role, missing names leave no
-- memory behind, create/drop churn in one transaction does not fill the
-- slots, and a PREPAREd transaction that allocated holds no table lock.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS idalloc;
RESET client_min_messages;
-- errors show their SQLSTATE; \echo :LAST_ERROR_MESSAGE shows the message
-- where it matters (VERBOSITY verbose would print source line numbers)
\set VERBOSITY sqlstate

-- the trigger functions are not executable by PUBLIC (CREATE TRIGGER
-- needs EXECUTE), the triggers are ENABLE ALWAYS, and a subscriber finds
-- rows by name
SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') AS public_can_execute
  FROM pg_proc p WHERE p.proname IN ('idalloc_registry_insert', 'idalloc_registry_guard')
 ORDER BY 1;
SELECT tgname, tgenabled FROM pg_trigger
 WHERE tgrelid = 'idalloc_registry'::regclass ORDER BY 1;
SELECT relreplident, (SELECT indexrelid::regclass FROM pg_index
                        WHERE indrelid = c.oid AND indisreplident) AS identity_index
  FROM pg_class c WHERE oid = 'idalloc_registry'::regclass;

SELECT idalloc_create('h', block => 10);
SELECT idalloc_one('h');
CREATE TEMP TABLE before_attack AS SELECT * FROM idalloc_registry;

-- a look-alike table (temporary, so first in search_path) with idalloc's
-- trigger attached (only a superuser can attach it): a COPY into it is not
-- a restore of the real table; the trigger refuses to run on it (39P01)
CREATE TEMP TABLE idalloc_registry (id bigint, start bigint, block bigint,
    persisted_end bigint, cache int, name text, kind text, source text);
CREATE TRIGGER t BEFORE INSERT ON idalloc_registry
    FOR EACH ROW EXECUTE FUNCTION public.idalloc_registry_insert();
COPY idalloc_registry FROM STDIN;
1	1	5	9223372036854775000	7	default	counter	\N
2	1	5	9223372036854775000	7	h	counter	\N
\.
INSERT INTO idalloc_registry VALUES (1, 1, 5, 9223372036854775000, 7, 'h', 'counter', NULL);
\echo :LAST_ERROR_MESSAGE
-- the same with a non-text name column (idalloc 1.0 crashed the server)
DROP TABLE idalloc_registry;
CREATE TEMP TABLE idalloc_registry (id bigint, start bigint, block bigint,
    persisted_end bigint, cache int, name int, kind text, source text);
CREATE TRIGGER t BEFORE INSERT ON idalloc_registry
    FOR EACH ROW EXECUTE FUNCTION public.idalloc_registry_insert();
COPY idalloc_registry FROM STDIN;
1	1	5	9223372036854775000	7	42	counter	\N
\.
DROP TABLE idalloc_registry;
-- the guard on a look-alike table with a row in it
CREATE TEMP TABLE idalloc_registry (id bigint, start bigint, block bigint,
    persisted_end bigint, cache int, name int, kind text, source text);
INSERT INTO idalloc_registry VALUES (1, 1, 5, 1, 7, 42, 'counter', NULL);
CREATE TRIGGER g BEFORE UPDATE OR DELETE ON idalloc_registry
    FOR EACH ROW EXECUTE FUNCTION public.idalloc_registry_guard();
UPDATE idalloc_registry SET persisted_end = 2;
\echo :LAST_ERROR_MESSAGE
DELETE FROM idalloc_registry;
DROP TABLE idalloc_registry;
-- calling a trigger function directly
SELECT public.idalloc_registry_guard();
\echo :LAST_ERROR_MESSAGE
-- the real table is unchanged
SELECT r.name, r.block, r.cache, r.persisted_end
  FROM public.idalloc_registry r
  FULL JOIN before_attack b USING (id)
 WHERE (r.*)::text IS DISTINCT FROM (b.*)::text;

-- session_replication_role = replica does not switch the guards off
SET session_replication_role = replica;
UPDATE public.idalloc_registry SET persisted_end = 1 WHERE name = 'h';
\echo :LAST_ERROR_MESSAGE
DELETE FROM public.idalloc_registry WHERE name = 'h';
TRUNCATE public.idalloc_registry;
INSERT INTO public.idalloc_registry (name, start, block, persisted_end, cache, kind)
    VALUES ('r', 1, 1, 1, 1, 'counter');
SET session_replication_role = local;
UPDATE public.idalloc_registry SET persisted_end = 1 WHERE name = 'h';
RESET session_replication_role;
-- nor can DDL switch them off (outside idalloc's own script)
ALTER TABLE public.idalloc_registry DISABLE TRIGGER ALL;
\echo :LAST_ERROR_MESSAGE
ALTER TABLE public.idalloc_registry DISABLE TRIGGER idalloc_registry_guard;
ALTER TABLE public.idalloc_registry ENABLE REPLICA TRIGGER idalloc_registry_guard;
ALTER TABLE public.idalloc_registry DISABLE TRIGGER USER;
CREATE TRIGGER z BEFORE INSERT ON public.idalloc_registry
    FOR EACH ROW EXECUTE FUNCTION public.idalloc_registry_insert();
CREATE RULE r AS ON UPDATE TO public.idalloc_registry DO INSTEAD NOTHING;
DROP TRIGGER idalloc_registry_guard ON public.idalloc_registry;
\echo :LAST_ERROR_MESSAGE
DROP TRIGGER IF EXISTS idalloc_registry_insert ON idalloc_registry;
SELECT tgname, tgenabled FROM pg_trigger
 WHERE tgrelid = 'public.idalloc_registry'::regclass ORDER BY 1;
SELECT r.name FROM public.idalloc_registry r
  FULL JOIN before_attack b USING (id)
 WHERE (r.*)::text IS DISTINCT FROM (b.*)::text;
SELECT idalloc_one('h') AS continues;

-- the conninfo table (1.2) has a guard of its own: direct writes are
-- refused, also under session_replication_role = replica (only what a
-- subscription brings is skipped, in its apply and table-sync workers), DDL
-- cannot switch it off, and its function refuses to run on a look-alike
INSERT INTO public.idalloc_source_conninfo VALUES (1, 'host=x password=p');
\echo :LAST_ERROR_MESSAGE
SET session_replication_role = replica;
INSERT INTO public.idalloc_source_conninfo VALUES (1, 'host=x password=p');
RESET session_replication_role;
TRUNCATE public.idalloc_source_conninfo;
ALTER TABLE public.idalloc_source_conninfo DISABLE TRIGGER idalloc_source_conninfo_guard;
\echo :LAST_ERROR_MESSAGE
ALTER TABLE public.idalloc_source_conninfo DISABLE TRIGGER ALL;
DROP TRIGGER idalloc_source_conninfo_guard_truncate ON public.idalloc_source_conninfo;
ALTER TRIGGER idalloc_source_conninfo_guard ON public.idalloc_source_conninfo RENAME TO g;
CREATE TEMP TABLE idalloc_source_conninfo (id bigint, conninfo text);
CREATE TRIGGER g BEFORE INSERT ON idalloc_source_conninfo
    FOR EACH ROW EXECUTE FUNCTION public.idalloc_source_conninfo_guard();
INSERT INTO idalloc_source_conninfo VALUES (1, 'x');
\echo :LAST_ERROR_MESSAGE
DROP TABLE idalloc_source_conninfo;
SELECT tgname, tgenabled FROM pg_trigger
 WHERE tgrelid = 'public.idalloc_source_conninfo'::regclass ORDER BY 1;
SELECT count(*) AS conninfo_rows FROM public.idalloc_source_conninfo;

-- a superuser may add a column to the table: allocators already there keep
-- working (the in-place write keeps each row's length; 1.1 before this fix
-- raised XX000 "wrong tuple length" for every existing row)
SELECT idalloc_create('k', block => 2);
SELECT idalloc_one('k'), idalloc_one('k');
ALTER TABLE public.idalloc_registry ADD COLUMN zz int;
SELECT idalloc_one('k') AS after_add_column;
SELECT idalloc_alter('k', block => 5, cache => 1);
SELECT * FROM idalloc_batch('k', 7);
ALTER TABLE public.idalloc_registry DROP COLUMN zz;
SELECT idalloc_one('k') AS after_drop_column;
SELECT name, block, persisted_end FROM public.idalloc_registry WHERE name = 'k';
SELECT idalloc_drop('k');

-- a restore (COPY into the real table) brings a new allocator as dumped,
-- and merges one that exists; a tso row is restored as such; a row with a
-- source is restored with what may be shown of it (host, port, database
-- name: never a password, even if the dumped row had one)
COPY public.idalloc_registry (id, start, block, persisted_end, cache, name, kind, source) FROM STDIN;
900	1	10	500	1	restored	counter	\N
901	1	7	42	3	h	counter	\N
\.
SELECT name, block, cache, persisted_end >= 500 AS at_least_dumped_end
  FROM public.idalloc_registry WHERE name = 'restored';
-- h takes the dumped block and cache, and is raised to the dumped end
SELECT name, block, cache, persisted_end FROM public.idalloc_registry WHERE name = 'h';
SELECT idalloc_one('restored') AS restored_first, idalloc_one('h') AS h_from_dumped_end;
COPY public.idalloc_registry (start, block, persisted_end, cache, name, kind, source) FROM STDIN;
1	10	1	1	timed	tso	\N
\.
COPY public.idalloc_registry (start, block, persisted_end, cache, name, kind, source) FROM STDIN;
1	10	1	1	remote	counter	host=elsewhere password=secret
\.
SELECT name, source FROM public.idalloc_registry WHERE name = 'remote';
SELECT idalloc_drop('remote');
SELECT name, kind FROM public.idalloc_registry WHERE name = 'timed';
SELECT idalloc_one('timed') >= idalloc_tso_from(clock_timestamp() - interval '1 s') AS timed_is_tso;
SELECT idalloc_drop('timed');
SELECT idalloc_drop('restored');
\set VERBOSITY terse

-- 20,000 missing names leave nothing in this backend's name map (1.0
-- entered each one: 200,000 grew it to 25 MB)
DO $$
BEGIN
    FOR i IN 1 .. 20000 LOOP
        BEGIN
            PERFORM idalloc_one('missing_' || i);
        EXCEPTION WHEN undefined_object THEN
            NULL;
        END;
    END LOOP;
END
$$;
SELECT total_bytes < 65536 AS name_map_small
  FROM pg_backend_memory_contexts WHERE name = 'idalloc allocators';
-- and allocators that come and go: dropped ones are swept
DO $$
BEGIN
    FOR i IN 1 .. 600 LOOP
        PERFORM idalloc_create('churn_' || i);
        PERFORM idalloc_one('churn_' || i);
        PERFORM idalloc_drop('churn_' || i);
    END LOOP;
END
$$;
SELECT total_bytes < 262144 AS name_map_bounded
  FROM pg_backend_memory_contexts WHERE name = 'idalloc allocators';
-- ... and that loop ran in ONE transaction: a drop of an allocator created
-- in the same (sub)transaction gives its slot back at once (64 slots here)
SELECT count(*) AS live_slots_of_dropped FROM idalloc_allocator_state() s
 WHERE NOT EXISTS (SELECT FROM idalloc_registry r WHERE r.id = s.id);
-- the same when each drop runs in a subtransaction (an EXCEPTION block)
-- that commits into the one that created the allocator
DO $$
BEGIN
    FOR i IN 1 .. 200 LOOP
        PERFORM idalloc_create('sub_churn_' || i);
        BEGIN
            PERFORM idalloc_drop('sub_churn_' || i);
        EXCEPTION WHEN OTHERS THEN
            RAISE;
        END;
    END LOOP;
END
$$;
SELECT count(*) AS live_slots_of_dropped FROM idalloc_allocator_state() s
 WHERE NOT EXISTS (SELECT FROM idalloc_registry r WHERE r.id = s.id);
-- a drop in a subtransaction of an allocator created outside it waits for
-- commit: rolling the subtransaction back keeps the allocator working
BEGIN;
SELECT idalloc_create('sub');
SELECT idalloc_one('sub');
SAVEPOINT a;
SELECT idalloc_drop('sub');
ROLLBACK TO a;
SELECT idalloc_one('sub') AS still_works;
COMMIT;
SELECT idalloc_one('sub') AS after_commit;
SELECT idalloc_drop('sub');

-- a PREPAREd transaction that persisted a block holds no lock on the table
-- (the in-place write is not transactional); DDL on it is not blocked
BEGIN;
SELECT * FROM idalloc_batch('h', 100);
PREPARE TRANSACTION 'idalloc_prepared_advance';
SELECT count(*) AS registry_locks FROM pg_locks l
  JOIN pg_prepared_xacts p ON l.virtualtransaction = '-1/' || p.transaction
 WHERE p.gid = 'idalloc_prepared_advance'
   AND l.relation = 'public.idalloc_registry'::regclass;
COMMIT PREPARED 'idalloc_prepared_advance';

SELECT idalloc_drop('h');
