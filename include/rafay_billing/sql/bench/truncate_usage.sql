-- Benchmark set-up only: start from an empty usage table (rating_exceptions references it, and line
-- items and coverage describe its rows: they go too). The ledger refuses TRUNCATE (008); the benchmark
-- runs as the superuser of its throw-away server, whose replica mode skips the ledger's triggers until
-- this transaction ends.
SET LOCAL session_replication_role = replica;
TRUNCATE billing.usage_records, billing.rating_exceptions, billing.charge_line_items, billing.coverage;
