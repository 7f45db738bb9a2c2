SELECT * FROM idalloc_batch('tso', 1000000);
