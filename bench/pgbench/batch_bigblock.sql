SELECT * FROM idalloc_batch('bigblock', 1000000);
