SELECT count(nextval('seq_c1')) FROM generate_series(1, 10000);
