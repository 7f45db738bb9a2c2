-- idalloc_create(..., if_not_exists => true) [1.1]: as CREATE SEQUENCE IF
-- NOT EXISTS, an existing allocator of that name is a NOTICE, not 42710,
-- and is left as it is; the arguments are checked all the same.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS idalloc;
RESET client_min_messages;
\set VERBOSITY default

-- the first run creates it, a second run is a NOTICE and changes nothing
SELECT idalloc_create('ine_orders', start => 100, block => 500, if_not_exists => true);
SELECT idalloc_one('ine_orders') AS first_id;
SELECT idalloc_create('ine_orders', start => 5000, block => 9, cache => 7,
                      kind => 'tso', if_not_exists => true);
SELECT name, kind, start, block, cache FROM idalloc_allocators WHERE name = 'ine_orders';
SELECT idalloc_one('ine_orders') AS next_id_goes_on;

-- without it (or with false) the duplicate is still 42710
SELECT idalloc_create('ine_orders');
\echo :LAST_ERROR_SQLSTATE
SELECT idalloc_create('ine_orders', if_not_exists => false);
\echo :LAST_ERROR_SQLSTATE

-- bad arguments are errors even when the allocator exists (nothing created)
SELECT idalloc_create('ine_orders', block => 0, if_not_exists => true);
\echo :LAST_ERROR_SQLSTATE
SELECT idalloc_create('ine_orders', kind => 'uuid', if_not_exists => true);
\echo :LAST_ERROR_SQLSTATE
SELECT idalloc_create('ine_orders', if_not_exists => NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT idalloc_create(NULL, if_not_exists => true);
\echo :LAST_ERROR_SQLSTATE

-- in a migration run twice, inside transactions; the create is transactional
BEGIN;
SELECT idalloc_create('ine_migrated', if_not_exists => true);
SELECT idalloc_create('ine_migrated', if_not_exists => true);
ROLLBACK;
SELECT count(*) AS after_rollback FROM idalloc_allocators WHERE name = 'ine_migrated';
BEGIN;
SELECT idalloc_create('ine_migrated', if_not_exists => true);
COMMIT;
BEGIN;
SELECT idalloc_create('ine_migrated', if_not_exists => true);
COMMIT;
SELECT count(*) AS one_allocator FROM idalloc_allocators WHERE name = 'ine_migrated';

-- PUBLIC still has no EXECUTE on it
SELECT has_function_privilege('public',
       'idalloc_create(text, bigint, bigint, integer, text, text, boolean)', 'EXECUTE')
       AS public_may_create;

SELECT idalloc_drop('ine_orders');
SELECT idalloc_drop('ine_migrated');
