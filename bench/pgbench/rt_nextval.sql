SELECT nextval('seq_c1');
