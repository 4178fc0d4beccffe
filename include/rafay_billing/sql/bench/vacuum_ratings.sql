-- Benchmark only: what autovacuum does between two ratings of a window (needs autocommit).
VACUUM (ANALYZE) billing.charge_line_items, billing.rating_exceptions;
