-- Objects of the benchmark database (run once per "make bench", on a fresh
-- cluster).  Every measured query of bench/run.sh uses only these.

CREATE EXTENSION idalloc;

-- idalloc_one() uses "default" (cache 1, block 200000), created by the
-- extension.  Named allocators:
SELECT idalloc_create('named');                         -- cache 1, looked up by name
SELECT idalloc_create('cached', cache => 1000);         -- per-backend cache of 1000
SELECT idalloc_create('bigblock', block => 1000000000); -- batch test without a flush per call
SELECT idalloc_create('twosess', block => 1000000000);  -- two sessions on one cache-1 counter (issue 8)
SELECT idalloc_create('tso', kind => 'tso');            -- kind tso, cache 1, window 3 s (issue 9)
SELECT idalloc_create('srcbench');                      -- the authority of a sourced server (issue 10)

-- The sequence baselines.
CREATE SEQUENCE seq_c1 CACHE 1;
CREATE SEQUENCE seq_c1000 CACHE 1000;

-- INSERT tables: no index, so the ID generator is as large a share of the
-- cost as possible.  bigserial and identity use sequences with CACHE 1.
CREATE TABLE ins_idalloc   (id bigint DEFAULT idalloc_one(), v int);
CREATE TABLE ins_bigserial (id bigserial, v int);
CREATE TABLE ins_identity  (id bigint GENERATED ALWAYS AS IDENTITY, v int);
