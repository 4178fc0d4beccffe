-- Benchmark set-up only: settle the freshly loaded tables (needs autocommit).
VACUUM (ANALYZE) billing.usage_records;
