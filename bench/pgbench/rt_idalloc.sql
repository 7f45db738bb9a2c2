SELECT idalloc_one();
