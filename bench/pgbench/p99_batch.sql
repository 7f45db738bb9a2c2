SELECT * FROM idalloc_batch(100000);
