-- Benchmark check only: rows the usage table holds (every run, every day).
SELECT count(*) FROM billing.usage_records;
