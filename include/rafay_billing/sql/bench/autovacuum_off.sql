-- Benchmark only: no autovacuum worker on the usage table while rounds are timed (each round starts
-- from TRUNCATE, so there is nothing for it to clean, but it would compete for the two cores).
ALTER TABLE billing.usage_records SET (autovacuum_enabled = false);
