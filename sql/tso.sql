--
-- The layout of tso IDs: (unix_ms << 18) + logical.  idalloc_tso_decode
-- takes one apart, idalloc_tso_from gives the smallest ID of a moment.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS idalloc;
RESET client_min_messages;
SET timezone = 'UTC';

-- known values
SELECT * FROM idalloc_tso_decode(0);
SELECT * FROM idalloc_tso_decode((1700000000000::bigint << 18) + 5);
SELECT * FROM idalloc_tso_decode(262143);
SELECT * FROM idalloc_tso_decode(262144);
SELECT * FROM idalloc_tso_decode(9223372036854775807);
SELECT idalloc_tso_from('1970-01-01 00:00:00+00');
SELECT idalloc_tso_from('1970-01-01 00:00:00.0009+00');   -- truncated: 0
SELECT idalloc_tso_from('1970-01-01 00:00:00.001+00');    -- 1 ms: 2^18
SELECT idalloc_tso_from('2023-11-14 22:13:20+00') = 1700000000000::bigint << 18 AS from_known;

-- round trips: the ID of a moment decodes to the moment truncated to the
-- millisecond, logical 0; every ID of that millisecond is at or after it,
-- and the first ID of the next millisecond is after all of them
SELECT ts, (d).physical = date_trunc('milliseconds', ts) AS physical_ok,
       (d).logical = 0 AS logical_ok
  FROM (SELECT ts, idalloc_tso_decode(idalloc_tso_from(ts)) AS d
          FROM unnest(ARRAY['2000-01-01 00:00:00+00', '2024-02-29 12:34:56.789+00',
                            '2026-11-26 15:00:00.123456+00', '3000-01-01 00:00:00+00']::timestamptz[]) ts) s;
SELECT count(*) AS mismatches
  FROM generate_series(0, 2000) g,
       LATERAL (SELECT (1764169200000::bigint + g * 7919) << 18 | (g * 131) % 262144 AS id) i,
       LATERAL idalloc_tso_decode(i.id) d
 WHERE idalloc_tso_from(d.physical) <> (i.id >> 18) << 18
    OR d.logical <> i.id & 262143
    OR idalloc_tso_from(d.physical + interval '1 millisecond') <= i.id;

-- edges
SELECT idalloc_tso_from('-infinity');                     -- the smallest ID
SELECT idalloc_tso_from('1969-12-31 23:59:59.999+00');     -- before 1970: 0
\set VERBOSITY sqlstate
SELECT idalloc_tso_from('infinity');                       -- 22008
SELECT idalloc_tso_from('3100-01-01 00:00:00+00');         -- past the last ms: 22008
SELECT * FROM idalloc_tso_decode(-1);                      -- 22023
\set VERBOSITY default
SELECT count(*) FROM idalloc_tso_decode(NULL);             -- STRICT: no row
SELECT idalloc_tso_from(NULL) IS NULL AS from_null;

-- immutable and parallel safe: usable in an index condition
SELECT proname, provolatile, proparallel, proisstrict
  FROM pg_proc WHERE proname IN ('idalloc_tso_decode', 'idalloc_tso_from')
 ORDER BY proname;
SELECT has_function_privilege('public', 'idalloc_tso_decode(bigint)', 'EXECUTE') AS decode_public,
       has_function_privilege('public', 'idalloc_tso_from(timestamptz)', 'EXECUTE') AS from_public;
CREATE TABLE tso_events (id bigint PRIMARY KEY, what text);
INSERT INTO tso_events
  SELECT idalloc_tso_from('2026-11-25 00:00:00+00'::timestamptz + g * interval '1 hour') + g, 'e' || g
    FROM generate_series(0, 47) g;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT * FROM tso_events WHERE id >= idalloc_tso_from('2026-11-26 00:00:00+00');
SELECT count(*) AS since_nov_26 FROM tso_events
 WHERE id >= idalloc_tso_from('2026-11-26 00:00:00+00');
RESET enable_seqscan;
DROP TABLE tso_events;
