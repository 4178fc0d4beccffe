DROP TABLE IF EXISTS pg_temp.price_book_stage;
