-- Create and drop are transactional; allocation is not (like nextval).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS idalloc;
RESET client_min_messages;

-- an allocator can be used in the transaction that creates it
BEGIN;
SELECT idalloc_create('t1', start => 10, block => 3);
SELECT idalloc_one('t1'), idalloc_one('t1');
SELECT name, next_id FROM idalloc_allocators WHERE name = 't1';
ROLLBACK;
-- a rolled-back create leaves nothing behind
SELECT count(*) FROM idalloc_registry WHERE name = 't1';
SELECT count(*) FROM idalloc_allocator_state() s
 WHERE NOT EXISTS (SELECT 1 FROM idalloc_registry r WHERE r.id = s.id);
SELECT idalloc_one('t1');
-- and the name is free again, starting afresh
SELECT idalloc_create('t1', start => 10, block => 3);
SELECT idalloc_one('t1');

-- a rolled-back drop keeps the allocator working, where it was
BEGIN;
SELECT idalloc_drop('t1');
SELECT idalloc_one('t1');
ROLLBACK;
SELECT idalloc_one('t1');

-- drop inside a savepoint that is rolled back
BEGIN;
SAVEPOINT s1;
SELECT idalloc_drop('t1');
ROLLBACK TO SAVEPOINT s1;
SELECT idalloc_one('t1');
COMMIT;

-- create inside a savepoint that is rolled back; the outer one commits
BEGIN;
SELECT idalloc_create('t2', start => 500);
SAVEPOINT s1;
SELECT idalloc_create('t3', start => 700);
SELECT idalloc_one('t3');
ROLLBACK TO SAVEPOINT s1;
SELECT idalloc_one('t2');
SAVEPOINT s2;
SELECT idalloc_create('t4', start => 900);
RELEASE SAVEPOINT s2;
COMMIT;
SELECT name FROM idalloc_allocators WHERE name IN ('t2', 't3', 't4') ORDER BY name;
SELECT idalloc_one('t3');
SELECT idalloc_one('t4');

-- IDs are not returned by a rollback (G4)
BEGIN;
SELECT idalloc_one('t2');
ROLLBACK;
SELECT idalloc_one('t2');
BEGIN;
SELECT * FROM idalloc_batch('t2', 100);
ROLLBACK;
SELECT idalloc_one('t2');

-- an error after allocating in the same transaction: IDs stay used
BEGIN;
SELECT idalloc_one('t2');
SELECT 1 / 0;
ROLLBACK;
SELECT idalloc_one('t2');

-- drop + create of the same name in one transaction: a new allocator
BEGIN;
SELECT idalloc_drop('t1');
SELECT idalloc_create('t1', start => 100000);
SELECT idalloc_one('t1');
COMMIT;
SELECT idalloc_one('t1');
SELECT name, start, next_id FROM idalloc_allocators WHERE name = 't1';

-- drop commits: later calls fail, the slot is released
SELECT idalloc_drop('t1');
SELECT idalloc_one('t1');
SELECT count(*) FROM idalloc_allocator_state() s
 WHERE NOT EXISTS (SELECT 1 FROM idalloc_registry r WHERE r.id = s.id);

-- two-phase commit cannot carry a create or drop
BEGIN;
SELECT idalloc_create('t5');
PREPARE TRANSACTION 'idalloc_t5';
SELECT count(*) FROM idalloc_registry WHERE name = 't5';

-- the catalog row is never updated transactionally: its xmin stays that of
-- the create, whatever the advances and alters did
SELECT xmin AS created_xmin FROM idalloc_registry WHERE name = 't2' \gset
SELECT * FROM idalloc_batch('t2', 1000000);
SELECT idalloc_alter('t2', block => 7, cache => 2);
SELECT xmin = :'created_xmin' AS same_version, block, cache, persisted_end
  FROM idalloc_registry WHERE name = 't2';

SELECT idalloc_drop('t2');
SELECT idalloc_drop('t4');
