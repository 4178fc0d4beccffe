-- Benchmark set-up only: start from an empty usage table.
TRUNCATE billing.usage_records;
