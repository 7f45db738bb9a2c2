-- The SQL surface: allocation, batches, the view, create/alter/advance.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS idalloc;
RESET client_min_messages;

-- the default allocator exists and starts at 1
SELECT name, kind, start, block, cache FROM idalloc_allocators WHERE name = 'default';
SELECT idalloc_one() AS first_default_id;
SELECT idalloc_one('default') AS second;

-- strictly increasing within a session (cache = 1)
SELECT bool_and(id > prev) AS increasing, count(*) AS n
  FROM (SELECT id, lag(id) OVER (ORDER BY ord) AS prev
          FROM (SELECT ord, idalloc_one() AS id
                  FROM generate_series(1, 1000) AS ord) s) t
 WHERE prev IS NOT NULL;

-- a batch is half-open and contiguous: [start_id, end_id), end - start = count
SELECT start_id, end_id, end_id - start_id AS width FROM idalloc_batch(10);
-- the next single ID is the batch's end_id
SELECT idalloc_one() AS after_batch;
-- a batch of one
SELECT * FROM idalloc_batch('default', 1);

-- named allocators with their own start and block
SELECT idalloc_create('orders', start => 1000, block => 4);
SELECT name, kind, start, block, cache, next_id, persisted_until, block_advances
  FROM idalloc_allocators WHERE name = 'orders';
SELECT idalloc_one('orders') FROM generate_series(1, 6);
-- 6 IDs with block 4: two advances, end 1000 + 4 + 4
SELECT next_id, persisted_until, block_advances
  FROM idalloc_allocators WHERE name = 'orders';
-- the catalog row holds the same persisted end
SELECT persisted_end FROM idalloc_registry WHERE name = 'orders';

-- a batch larger than the block: one advance of batch + block
SELECT * FROM idalloc_batch('orders', 10);
SELECT next_id, persisted_until, block_advances
  FROM idalloc_allocators WHERE name = 'orders';
-- a batch that fits the rest of the block: no advance
SELECT * FROM idalloc_batch('orders', 4);
SELECT block_advances FROM idalloc_allocators WHERE name = 'orders';

-- DEFAULT idalloc_one('name') in a table
CREATE TABLE items (id bigint PRIMARY KEY DEFAULT idalloc_one('orders'), v text);
INSERT INTO items (v) VALUES ('a'), ('b'), ('c');
SELECT id, v FROM items ORDER BY id;

-- alter changes later advances only; it never moves the persisted end back
SELECT idalloc_alter('orders', block => 100);
SELECT block, cache, persisted_end FROM idalloc_registry WHERE name = 'orders';
SELECT idalloc_one('orders') FROM generate_series(1, 4);
SELECT next_id, persisted_until FROM idalloc_allocators WHERE name = 'orders';
SELECT idalloc_alter('orders', cache => 5);
SELECT block, cache FROM idalloc_registry WHERE name = 'orders';
SELECT idalloc_alter('orders');
SELECT block, cache FROM idalloc_registry WHERE name = 'orders';
SELECT idalloc_alter('orders', cache => 1);

-- advance: forward only, returns the next ID
SELECT idalloc_advance('orders', 5000);
SELECT idalloc_one('orders');
SELECT idalloc_advance('orders', 10);
SELECT idalloc_one('orders');
-- advance inside the current block needs no new block
SELECT idalloc_advance('orders', 5050);
SELECT idalloc_one('orders');
SELECT next_id, persisted_until FROM idalloc_allocators WHERE name = 'orders';

-- negative starts are allowed, as for sequences
SELECT idalloc_create('neg', start => -10, block => 3);
SELECT idalloc_one('neg') FROM generate_series(1, 5);

-- names are case- and byte-exact; 63 bytes is the longest
SELECT idalloc_create('Orders');
SELECT idalloc_one('Orders');
SELECT idalloc_create(repeat('n', 63));
SELECT idalloc_one(repeat('n', 63));

-- STRICT allocation functions: NULL in, NULL out
SELECT idalloc_one(NULL) IS NULL AS null_name;
SELECT count(*) FROM idalloc_batch(NULL::bigint);

-- one call site with changing names (per-call-site name memo)
SELECT n, idalloc_one(n) AS id
  FROM (VALUES (1, 'orders'), (2, 'neg'), (3, 'orders'), (4, 'Orders')) v(o, n)
 ORDER BY o;

SELECT idalloc_drop('orders');
SELECT idalloc_drop('neg');
SELECT idalloc_drop('Orders');
SELECT idalloc_drop(repeat('n', 63));
DROP TABLE items;
SELECT name FROM idalloc_allocators ORDER BY name;
