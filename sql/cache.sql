-- Per-backend caches (cache > 1): refills, what is served from the cache
-- and what from the global counter, sync, advance, alter, drop, the views.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS idalloc;
RESET client_min_messages;

SELECT idalloc_create('c', start => 1, block => 100, cache => 10);
-- the first call takes [1, 11) into this backend's cache
SELECT idalloc_one('c'), idalloc_one('c');
SELECT allocator, next_id, end_id, pid = pg_backend_pid() AS mine FROM idalloc_caches;
SELECT next_id, persisted_until, allocated, block_advances, cached_ranges
  FROM idalloc_allocators WHERE name = 'c';

-- a batch that fits the rest is served from the cache
SELECT * FROM idalloc_batch('c', 5);
SELECT next_id, end_id FROM idalloc_caches;
-- a batch larger than the rest comes from the global counter: the rest
-- (8..10) is given back first (nobody took IDs since), so the batch starts
-- with it, and the next idalloc_one comes from a refill above the batch
-- (G2: everything one session receives strictly increases)
SELECT * FROM idalloc_batch('c', 4);
SELECT idalloc_one('c') AS above_the_batch;
SELECT next_id, end_id FROM idalloc_caches;
-- the refilled range is served
SELECT idalloc_one('c') AS cached, idalloc_one('c') AS next_cached;
SELECT next_id, end_id FROM idalloc_caches;
SELECT idalloc_one('c') AS after_refill;
SELECT next_id, end_id FROM idalloc_caches;
SELECT next_id, allocated, cached_ranges FROM idalloc_allocators WHERE name = 'c';

-- within one session IDs from idalloc_one strictly increase
SELECT bool_and(id > prev) AS increasing
  FROM (SELECT id, lag(id) OVER (ORDER BY o) AS prev
          FROM (SELECT o, idalloc_one('c') AS id FROM generate_series(1, 500) o) s) t
 WHERE prev IS NOT NULL;

-- G2 with a cache, idalloc_one and idalloc_batch mixed: idalloc 1.0 gave
-- 1, then [11, 31), then 2 (backward)
SELECT idalloc_create('g2', block => 50, cache => 10);
SELECT idalloc_one('g2') AS first;
SELECT * FROM idalloc_batch('g2', 20);
SELECT idalloc_one('g2') AS after_batch;
-- 2000 random calls of both kinds and sizes (some larger than the cache,
-- some than the block): each ID received is above all received before
DO $$
DECLARE
    last bigint := idalloc_one('g2');
    s bigint;
    e bigint;
    n bigint;
BEGIN
    PERFORM setseed(0.7);
    FOR i IN 1 .. 2000 LOOP
        IF random() < 0.5 THEN
            s := idalloc_one('g2');
            e := s + 1;
        ELSE
            n := 1 + floor(random() * random() * 80)::bigint;
            SELECT start_id, end_id INTO s, e FROM idalloc_batch('g2', n);
            IF e - s <> n THEN
                RAISE EXCEPTION 'batch of % returned [%, %)', n, s, e;
            END IF;
        END IF;
        IF s <= last THEN
            RAISE EXCEPTION 'call %: got % after %', i, s, last;
        END IF;
        last := e - 1;
    END LOOP;
END
$$;
SELECT idalloc_drop('g2');

-- sync: the unused rest goes back to the global counter when nobody took
-- IDs from it since (no gap), and the next ID comes from a new refill
SELECT idalloc_one('c');
SELECT next_id, end_id FROM idalloc_caches;
SELECT next_id AS global_next FROM idalloc_allocators WHERE name = 'c';
SELECT idalloc_sync('c');
SELECT count(*) AS my_ranges FROM idalloc_caches;
SELECT next_id AS global_next_after_sync FROM idalloc_allocators WHERE name = 'c';
SELECT idalloc_one('c');

-- advance voids every cached range: the next ID is >= next_id at once
SELECT idalloc_advance('c', 10000);
SELECT idalloc_one('c');
SELECT next_id, end_id FROM idalloc_caches;

-- alter changes the size of later refills only
SELECT idalloc_alter('c', cache => 3);
SELECT idalloc_one('c') FROM generate_series(1, 9);
SELECT next_id, end_id FROM idalloc_caches;
SELECT idalloc_one('c');
SELECT next_id, end_id FROM idalloc_caches;

-- cache = 1 again: the global counter, in order; the old range is not used
SELECT idalloc_alter('c', cache => 1);
SELECT idalloc_one('c'), idalloc_one('c');
SELECT count(*) AS cached_ranges FROM idalloc_caches;
-- and back to a cache: a new range, above everything handed out
SELECT idalloc_alter('c', cache => 4);
SELECT idalloc_one('c');

-- a backend caches at most 8 allocators; a 9th takes the least recently
-- used entry (its rest is given back: nobody took IDs since)
SELECT idalloc_create('m' || i, start => i * 1000, cache => 5)
  FROM generate_series(1, 9) i;
SELECT idalloc_one('m' || i) FROM generate_series(1, 9) i;
SELECT allocator, next_id, end_id FROM idalloc_caches ORDER BY allocator;
SELECT next_id FROM idalloc_allocators WHERE name = 'm1';
SELECT idalloc_one('m1');

-- sync of an allocator this session does not cache, or of one with cache 1
SELECT idalloc_sync('default');
SELECT idalloc_sync('m9');
SELECT idalloc_sync('m9');

-- drop: after commit the cached range is never served again
SELECT idalloc_alter('c', cache => 50);
SELECT idalloc_one('c');
SELECT idalloc_drop('c');
SELECT idalloc_one('c');
SELECT count(*) FROM idalloc_caches WHERE allocator = 'c';

-- errors of idalloc_sync
SELECT idalloc_sync(NULL);
SELECT idalloc_sync('missing');
SELECT idalloc_sync('');

SELECT idalloc_drop('m' || i) FROM generate_series(1, 9) i;

-- near the end of the ID space a refill takes what is left: every ID up to
-- 9223372036854775806 is handed out, then 2200H
SELECT idalloc_create('top_cached', start => 9223372036854775800, cache => 10);
SELECT idalloc_one('top_cached') FROM generate_series(1, 7);
SELECT idalloc_one('top_cached');
SELECT idalloc_drop('top_cached');
