SELECT count(idalloc_one('twosess')) FROM generate_series(1, 2000000);
