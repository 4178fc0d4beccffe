-- The CSV is the whole price book: rows it no longer lists go.
DELETE FROM billing.price_book AS p
WHERE NOT EXISTS (SELECT 1 FROM price_book_stage AS s WHERE s.price_id = p.price_id);
