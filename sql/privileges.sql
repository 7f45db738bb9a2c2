-- The privilege model: allocation for PUBLIC, management for superusers
-- (or roles granted EXECUTE), the catalog table readable, never writable
-- directly, even by a superuser.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS idalloc;
RESET client_min_messages;

CREATE ROLE regress_idalloc_app LOGIN;
CREATE ROLE regress_idalloc_admin LOGIN;
GRANT EXECUTE ON FUNCTION idalloc_create(text, bigint, bigint, integer, text, text, boolean),
                          idalloc_drop(text)
   TO regress_idalloc_admin;
SELECT idalloc_create('p', start => 10);

SET ROLE regress_idalloc_app;
-- allocation, sync and the views: allowed
SELECT idalloc_one('p');
SELECT * FROM idalloc_batch('p', 2);
SELECT idalloc_one() > 0 AS default_ok;
SELECT idalloc_sync('p');
SELECT name, next_id FROM idalloc_allocators WHERE name = 'p';
SELECT count(*) >= 0 AS caches_readable FROM idalloc_caches;
SELECT name, start FROM idalloc_registry WHERE name = 'p';
-- management: 42501
\set VERBOSITY sqlstate
SELECT idalloc_create('q');
SELECT idalloc_drop('p');
SELECT idalloc_alter('p', block => 5);
SELECT idalloc_advance('p', 1000);
-- the table: 42501
INSERT INTO idalloc_registry (name, start, block, persisted_end, cache, kind)
    VALUES ('q', 1, 10, 1, 1, 'counter');
UPDATE idalloc_registry SET persisted_end = 1;
DELETE FROM idalloc_registry;
TRUNCATE idalloc_registry;
\set VERBOSITY default
RESET ROLE;

-- a role granted EXECUTE needs no privilege on the table
SET ROLE regress_idalloc_admin;
SELECT idalloc_create('q', start => 500);
SELECT idalloc_one('q');
SELECT idalloc_drop('q');
\set VERBOSITY sqlstate
SELECT idalloc_alter('p', block => 5);
\set VERBOSITY default
RESET ROLE;

-- a superuser cannot write the table directly either (only COPY FROM, the
-- restore path, and the extension's own functions get through)
INSERT INTO idalloc_registry (name, start, block, persisted_end, cache, kind)
    VALUES ('q', 1, 10, 1, 1, 'counter');
UPDATE idalloc_registry SET block = 5 WHERE name = 'p';
DELETE FROM idalloc_registry WHERE name = 'p';
TRUNCATE idalloc_registry;
SELECT name, block FROM idalloc_registry WHERE name IN ('p', 'q');

SELECT idalloc_drop('p');
DROP ROLE regress_idalloc_app;
REVOKE ALL ON FUNCTION idalloc_create(text, bigint, bigint, integer, text, text, boolean),
                       idalloc_drop(text)
  FROM regress_idalloc_admin;
DROP ROLE regress_idalloc_admin;
