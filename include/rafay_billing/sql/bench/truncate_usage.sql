-- Benchmark set-up only: start from an empty usage table (rating_exceptions references it, and line
-- items and coverage describe its rows: they go too).
TRUNCATE billing.usage_records, billing.rating_exceptions, billing.charge_line_items, billing.coverage;
