-- Every error a user can cause: its SQLSTATE and message, and that it
-- consumes no IDs and changes nothing.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS idalloc;
RESET client_min_messages;

-- err(sql): run sql, show SQLSTATE, message, detail and hint of its error
CREATE FUNCTION err(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; det text; hin text;
BEGIN
    EXECUTE sql;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                            det = PG_EXCEPTION_DETAIL, hin = PG_EXCEPTION_HINT;
    RETURN st || ': ' || msg
        || CASE WHEN det <> '' THEN ' | DETAIL: ' || det ELSE '' END
        || CASE WHEN hin <> '' THEN ' | HINT: ' || hin ELSE '' END;
END $$;

SELECT idalloc_create('e', start => 100, block => 5);
SELECT idalloc_one('e');
CREATE TABLE before AS
    SELECT name, next_id, persisted_until, block_advances FROM idalloc_allocators;

-- 42704 undefined_object
SELECT err($$SELECT idalloc_one('missing')$$);
SELECT err($$SELECT * FROM idalloc_batch('missing', 5)$$);
SELECT err($$SELECT idalloc_drop('missing')$$);
SELECT err($$SELECT idalloc_alter('missing', 10)$$);
SELECT err($$SELECT idalloc_advance('missing', 10)$$);

-- 42710 duplicate_object
SELECT err($$SELECT idalloc_create('e')$$);
SELECT err($$SELECT idalloc_create('default')$$);

-- 22023 invalid_parameter_value: counts, sizes, kinds, names
SELECT err($$SELECT * FROM idalloc_batch(0)$$);
SELECT err($$SELECT * FROM idalloc_batch(-1)$$);
SELECT err($$SELECT * FROM idalloc_batch('e', 0)$$);
SELECT err($$SELECT idalloc_create('f', block => 0)$$);
SELECT err($$SELECT idalloc_create('f', block => -5)$$);
SELECT err($$SELECT idalloc_create('f', cache => 0)$$);
SELECT err($$SELECT idalloc_create('f', kind => 'uuid')$$);
SELECT err($$SELECT idalloc_create('')$$);
SELECT err($$SELECT idalloc_create(repeat('x', 64))$$);
SELECT err($$SELECT idalloc_create(repeat('é', 32))$$);
SELECT err($$SELECT idalloc_one('')$$);
SELECT err($$SELECT idalloc_one(repeat('x', 64))$$);
SELECT err($$SELECT * FROM idalloc_batch('', 1)$$);
SELECT err($$SELECT idalloc_drop('')$$);
SELECT err($$SELECT idalloc_alter('e', block => 0)$$);
SELECT err($$SELECT idalloc_alter('e', cache => -1)$$);

-- 22004 null_value_not_allowed: management functions
SELECT err($$SELECT idalloc_create(NULL)$$);
SELECT err($$SELECT idalloc_create('f', start => NULL)$$);
SELECT err($$SELECT idalloc_create('f', cache => NULL)$$);
SELECT err($$SELECT idalloc_create('f', kind => NULL)$$);
SELECT err($$SELECT idalloc_drop(NULL)$$);
SELECT err($$SELECT idalloc_alter(NULL)$$);
SELECT err($$SELECT idalloc_advance(NULL, 1)$$);
SELECT err($$SELECT idalloc_advance('e', NULL)$$);

-- 0A000 feature_not_supported: a tso allocator with a source (not in 1.1)
SELECT err($$SELECT idalloc_create('f', kind => 'tso', source => 'host=localhost')$$);
-- sources: a conninfo libpq cannot parse is 22023 with libpq's words; an
-- authority that cannot be reached is 08001 with libpq's message (never
-- the password); nothing is created either way
SELECT err($$SELECT idalloc_create('f', source => 'host=x password=secret nonsense=1')$$);
SELECT err($$SELECT idalloc_create('f', source => 'host=x password')$$);
-- (libpq's message may quote a piece of a value: masked)
SELECT err($$SELECT idalloc_create('f', source => 'host=x password=se cret')$$);
SELECT err($$SELECT idalloc_create('f', source => 'postgresql://u:s%zzecret@h/db')$$);
SELECT err($$SELECT idalloc_create('f', source => 'host=/nonexistent-idalloc-dir port=1 password=secret')$$);
SELECT count(*) AS nothing_created FROM idalloc_registry WHERE name = 'f';
-- a local allocator cannot become sourced
SELECT err($$SELECT idalloc_alter('e', source => 'host=/nonexistent-idalloc-dir port=1')$$);

-- 25006 read_only_sql_transaction
BEGIN TRANSACTION READ ONLY;
SELECT err($$SELECT idalloc_one()$$);
SELECT err($$SELECT idalloc_one('e')$$);
SELECT err($$SELECT * FROM idalloc_batch(3)$$);
SELECT err($$SELECT * FROM idalloc_batch('e', 3)$$);
SELECT err($$SELECT idalloc_create('f')$$);
SELECT err($$SELECT idalloc_drop('e')$$);
SELECT err($$SELECT idalloc_alter('e', 7)$$);
SELECT err($$SELECT idalloc_advance('e', 7000)$$);
COMMIT;
SET default_transaction_read_only = on;
SELECT err($$SELECT idalloc_one()$$);
RESET default_transaction_read_only;

-- 2200H sequence_generator_limit_exceeded: the last ID is 2^63 - 2, since
-- end_id (exclusive) must itself be a bigint
SELECT idalloc_create('top', start => 9223372036854775800, block => 3);
SELECT * FROM idalloc_batch('top', 5);
SELECT err($$SELECT * FROM idalloc_batch('top', 3)$$);
SELECT err($$SELECT * FROM idalloc_batch('top', 9223372036854775807)$$);
SELECT * FROM idalloc_batch('top', 2);
SELECT err($$SELECT idalloc_one('top')$$);
SELECT name, next_id, persisted_until FROM idalloc_allocators WHERE name = 'top';
-- a batch can span (almost) the whole range, in O(1)
SELECT idalloc_create('huge', start => 1);
SELECT err($$SELECT * FROM idalloc_batch('huge', 9223372036854775807)$$);
SELECT * FROM idalloc_batch('huge', 9223372036854775806);
SELECT err($$SELECT idalloc_one('huge')$$);

-- 42501 insufficient_privilege: the catalog table is written only by idalloc
-- (even for a superuser: an UPDATE could undo an in-place advance)
SELECT err($$UPDATE idalloc_registry SET persisted_end = 1 WHERE name = 'e'$$);
SELECT err($$UPDATE idalloc_registry SET block = 7$$);
SELECT err($$DELETE FROM idalloc_registry WHERE name = 'e'$$);
SELECT err($$TRUNCATE idalloc_registry$$);

-- nothing was consumed or changed by any of the errors above
SELECT b.name, a.next_id = b.next_id AS same_next,
       a.persisted_until = b.persisted_until AS same_end,
       a.block_advances = b.block_advances AS same_advances
  FROM before b JOIN idalloc_allocators a USING (name) ORDER BY b.name;
SELECT idalloc_one('e');
SELECT name FROM idalloc_allocators WHERE name NOT IN ('default', 'e', 'top', 'huge');

-- 55000: no block can be persisted in a transaction that rewrote the table
-- (a rollback would discard the in-place write with the new storage)
BEGIN;
ALTER TABLE idalloc_registry ADD COLUMN zz float8 DEFAULT random();
SELECT err($$SELECT idalloc_advance('e', 100000)$$);
SELECT idalloc_one('e');  -- the flushed block still serves
ROLLBACK;
SELECT idalloc_one('e');  -- and goes on after the rollback

SELECT idalloc_drop('e');
SELECT idalloc_drop('top');
SELECT idalloc_drop('huge');
DROP TABLE before;
DROP FUNCTION err(text);
