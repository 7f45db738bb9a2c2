SELECT count(idalloc_one()) FROM generate_series(1, 10000);
