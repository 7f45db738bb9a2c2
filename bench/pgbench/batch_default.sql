SELECT * FROM idalloc_batch(1000000);
