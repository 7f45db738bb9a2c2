-- idalloc demo: run by scripts/demo.sh after CREATE EXTENSION IF NOT EXISTS idalloc.
-- Safe to run repeatedly.

DROP TABLE IF EXISTS demo_orders;
CREATE TABLE demo_orders (
    id   bigint DEFAULT idalloc_one() PRIMARY KEY,
    item text
);

INSERT INTO demo_orders (item) VALUES ('apple'), ('banana'), ('cherry');
SELECT * FROM demo_orders ORDER BY id;

SELECT * FROM idalloc_batch(1000);

SELECT idalloc_one(), idalloc_one();

SELECT * FROM idalloc_allocators;

-- a named allocator with a per-backend cache of 100 IDs
SELECT idalloc_create('orders', start => 1000, cache => 100)
 WHERE NOT EXISTS (SELECT 1 FROM idalloc_registry WHERE name = 'orders');
SELECT idalloc_one('orders') AS order_id FROM generate_series(1, 3);
SELECT allocator, next_id, end_id FROM idalloc_caches;
SELECT name, cache, next_id, persisted_until, allocated, cached_ranges
  FROM idalloc_allocators ORDER BY name;
