--
-- Allocators of kind tso: each ID is max(previous + 1, now_ms << 18).
-- (The suites run with idalloc.max_block = 1: the step stays at the block.)
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS idalloc;
RESET client_min_messages;
SET timezone = 'UTC';

SELECT idalloc_create('tk', kind => 'tso');
-- the default block is 3 seconds of IDs
SELECT kind, block = 3000::bigint << 18 AS block_is_3s FROM idalloc_allocators WHERE name = 'tk';

-- IDs follow the wall clock
SELECT abs(extract(epoch FROM d.physical - clock_timestamp())) < 1 AS follows_clock
  FROM idalloc_tso_decode(idalloc_one('tk')) d;
-- the persisted window runs ahead of the clock, by about the block
SELECT persisted_until > idalloc_tso_from(clock_timestamp()) AS window_ahead,
       persisted_until <= idalloc_tso_from(clock_timestamp() + interval '4 s') AS window_bounded
  FROM idalloc_allocators WHERE name = 'tk';

-- strictly increasing, each ID at its moment and not ahead of the clock.
-- 500000 calls in one statement cross about a thousand millisecond
-- boundaries, and the backend reads the clock only near them (tso.c): a
-- timer signal marks its reading stale 100 us before each boundary.  (Only
-- a signal delivered later than that could leave an ID in the millisecond
-- before its moment; the check allows 2 ms so that a VM's hiccup cannot
-- fail it, and still fails if the reading is not renewed.  Under valgrind,
-- which delivers the timer's signal late, scripts/valgrind.sh sets
-- regress.tso_clock_slack_ms to allow for that: 500000 calls there take
-- far longer than the slack, so a reading never renewed still fails.)
CREATE TEMP TABLE got AS
  SELECT g, clock_timestamp() AS before, idalloc_one('tk') AS id, clock_timestamp() AS after
    FROM generate_series(1, 500000) g;
SELECT bool_and(id > prev) AS increasing
  FROM (SELECT id, lag(id) OVER (ORDER BY g) AS prev FROM got) s WHERE prev IS NOT NULL;
SELECT count(*) FILTER (WHERE id < idalloc_tso_from(before - make_interval(secs =>
           coalesce(nullif(current_setting('regress.tso_clock_slack_ms', true), ''), '2')::numeric / 1000)))
         AS behind_clock,
       count(*) FILTER (WHERE id >= idalloc_tso_from(after) + (1 << 18)) AS ahead_of_clock
  FROM got;
-- the same with pauses between the calls of one statement: each call
-- reads the clock, no ID is of a millisecond before its moment
SELECT bool_and(id >= idalloc_tso_from(before)) AS not_behind_after_pauses
  FROM (SELECT clock_timestamp() AS before, idalloc_one('tk') AS id, pg_sleep(0.003)
          FROM generate_series(1, 20)) s;

-- a batch larger than the logical space is contiguous and carries into
-- the physical bits; the next ID comes after it
CREATE TEMP TABLE b AS SELECT * FROM idalloc_batch('tk', 300000);
SELECT end_id - start_id = 300000 AS contiguous,
       (end_id >> 18) > (start_id >> 18) AS carries,
       start_id > (SELECT max(id) FROM got) AS after_previous
  FROM b;
SELECT idalloc_one('tk') >= (SELECT end_id FROM b) AS next_after_batch;

-- a batch of 2^40 IDs (about 70 minutes of milliseconds) in O(1)
CREATE TEMP TABLE huge AS SELECT * FROM idalloc_batch('tk', 1099511627776);
SELECT end_id - start_id = 1099511627776 AS huge_contiguous FROM huge;
SELECT idalloc_one('tk') = (SELECT end_id FROM huge) AS next_is_its_end;

-- a clock that goes backward never moves IDs backward
SET idalloc.debug_tso_clock_offset = '-1h';
SELECT idalloc_one('tk') > (SELECT end_id FROM huge) AS not_backward;
RESET idalloc.debug_tso_clock_offset;

-- a clock far forward is followed (with a WARNING, whose figure varies:
-- t/020_tso.pl checks it)
SET idalloc.debug_tso_clock_offset = '3h';
SET client_min_messages = error;
SELECT abs(extract(epoch FROM d.physical - (clock_timestamp() + interval '3 h'))) < 1 AS follows_forward
  FROM idalloc_tso_decode(idalloc_one('tk')) d;
RESET client_min_messages;
RESET idalloc.debug_tso_clock_offset;

-- idalloc_advance to a time, through idalloc_tso_from
SELECT idalloc_advance('tk', idalloc_tso_from('2200-01-01 00:00:00+00')) > 0 AS advanced;
SELECT physical FROM idalloc_tso_decode(idalloc_one('tk'));

-- start is a floor: the first ID is the later of start and the clock
SELECT idalloc_create('tf', kind => 'tso', start => idalloc_tso_from('2100-01-01 00:00:00+00'));
SELECT idalloc_one('tf') = idalloc_tso_from('2100-01-01 00:00:00+00') AS starts_at_start;

-- per-backend caches: a cached range is a contiguous range of the hybrid space
SELECT idalloc_create('tc', kind => 'tso', cache => 100);
SELECT count(*) = count(DISTINCT id) AS unique_cached,
       bool_and(id > prev) AS increasing_cached
  FROM (SELECT id, lag(id) OVER (ORDER BY g) AS prev
          FROM (SELECT g, idalloc_one('tc') AS id FROM generate_series(1, 1000) g) x) s
 WHERE prev IS NOT NULL;

-- the setting is superuser-only
CREATE ROLE tso_user;
SET ROLE tso_user;
\set VERBOSITY sqlstate
SET idalloc.debug_tso_clock_offset = '1s';
\set VERBOSITY default
RESET ROLE;
DROP ROLE tso_user;

-- errors
\set VERBOSITY sqlstate
SELECT idalloc_create('tx', kind => 'tso', source => 'host=x');   -- 0A000
SELECT idalloc_create('tx', kind => 'other');                     -- 22023
SELECT idalloc_create('tx', kind => 'tso', block => 0);           -- 22023
\set VERBOSITY default

SELECT idalloc_drop('tk');
SELECT idalloc_drop('tf');
SELECT idalloc_drop('tc');
