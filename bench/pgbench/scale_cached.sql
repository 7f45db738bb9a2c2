SELECT count(idalloc_one('cached')) FROM generate_series(1, 10000);
