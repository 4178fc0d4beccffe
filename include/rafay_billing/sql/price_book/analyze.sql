-- Fresh statistics so the rating plan probes the price book index sensibly.
ANALYZE billing.price_book;
