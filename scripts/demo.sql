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
