-- DROP EXTENSION idalloc and CREATE EXTENSION idalloc in one transaction
-- (what pg_restore --clean --single-transaction does).  The new
-- installation carries on where the dropped one stood; in that transaction
-- an allocator the dropped installation had hands out only what that one
-- had persisted (from its slot), so that whether the transaction commits
-- or rolls back (also to a savepoint), no ID is handed out twice.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS idalloc;
RESET client_min_messages;
\set VERBOSITY sqlstate

SELECT idalloc_create('ri', start => 1000, block => 10);
SELECT idalloc_one('ri') AS first;

-- rolled back to a savepoint
BEGIN;
SAVEPOINT a;
DROP EXTENSION idalloc;
CREATE EXTENSION idalloc;
SELECT idalloc_create('ri', start => 1, block => 10);
SELECT persisted_end AS new_row_starts_at FROM idalloc_registry WHERE name = 'ri';
SELECT idalloc_one('ri') AS in_txn_1, idalloc_one('ri') AS in_txn_2;
ROLLBACK TO a;
SELECT idalloc_one('ri') AS after_rollback_to_savepoint;
COMMIT;

-- rolled back
BEGIN;
DROP EXTENSION idalloc;
CREATE EXTENSION idalloc;
SELECT idalloc_create('ri', start => 1);
SELECT idalloc_one('ri') AS in_txn;
ROLLBACK;
SELECT idalloc_one('ri') AS after_rollback;

-- what the dropped installation persisted is used up: 55000, nothing is
-- handed out that could repeat
BEGIN;
DROP EXTENSION idalloc;
CREATE EXTENSION idalloc;
SELECT idalloc_create('ri', start => 1);
SELECT * FROM idalloc_batch('ri', 4);
SELECT idalloc_one('ri');
\echo :LAST_ERROR_MESSAGE
ROLLBACK;
SELECT idalloc_one('ri') AS next_block;

-- committed: the new installation continues above everything
BEGIN;
DROP EXTENSION idalloc;
CREATE EXTENSION idalloc;
SELECT idalloc_create('ri', start => 1, block => 10);
SELECT idalloc_one('ri') AS in_txn;
COMMIT;
SELECT idalloc_one('ri') AS after_commit;
SELECT name, persisted_end FROM idalloc_registry WHERE name = 'ri';
-- an allocator the dropped installation did not have: a new one, usable
BEGIN;
DROP EXTENSION idalloc;
CREATE EXTENSION idalloc;
SELECT idalloc_create('brand_new', start => 7);
SELECT idalloc_one('brand_new') AS brand_new;
COMMIT;
SELECT idalloc_one('brand_new') AS brand_new_after_commit;
-- and a drop of the new installation rolled back to a savepoint brings the
-- one of this transaction back, usable
BEGIN;
SELECT idalloc_one('brand_new') AS before;
SAVEPOINT b;
DROP EXTENSION idalloc;
ROLLBACK TO b;
SELECT idalloc_one('brand_new') AS after_rollback_to_savepoint;
COMMIT;
SELECT idalloc_drop('brand_new');

-- several installations in one transaction: a second one dropped and
-- brought back by a savepoint, then a third: the allocator still hands out
-- from the first installation's state, and nothing repeats after rollback
SELECT idalloc_create('cyc', start => 5000, block => 10);
SELECT idalloc_one('cyc') AS first;
BEGIN;
DROP EXTENSION idalloc;
CREATE EXTENSION idalloc;
SELECT idalloc_create('cyc', start => 1, block => 10);
SAVEPOINT s;
DROP EXTENSION idalloc;
ROLLBACK TO s;
SELECT idalloc_one('cyc') AS from_first_installation;
DROP EXTENSION idalloc;
CREATE EXTENSION idalloc;
SELECT idalloc_create('cyc', start => 1, block => 10);
SELECT idalloc_one('cyc') AS third_installation;
ROLLBACK;
SELECT idalloc_one('cyc') AS after_rollback;
SELECT idalloc_drop('cyc');

-- rolled back to a savepoint taken before the first DROP: the original
-- installation is back and works (its allocators are not redirected to an
-- installation that never was)
SELECT idalloc_create('back', start => 300, block => 10);
SELECT idalloc_one('back') AS first;
BEGIN;
SAVEPOINT s0;
DROP EXTENSION idalloc;
CREATE EXTENSION idalloc;
SELECT idalloc_create('back', start => 1, block => 10);
SELECT idalloc_one('back') AS from_original;
SAVEPOINT s1;
DROP EXTENSION idalloc;
ROLLBACK TO s0;
SELECT idalloc_one('back') AS original_again;
COMMIT;
SELECT idalloc_one('back') AS after_commit;
SELECT idalloc_drop('back');
