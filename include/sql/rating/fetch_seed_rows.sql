-- A window's landed usage in the seed script's order (org listing, then record order): the rows of
-- the seed-compatible ncp-metrics CSVs.
SELECT organization, profile_type, profile, instance, seed_usage, status
FROM billing.usage_records
WHERE window_start = %(window_start)s AND window_end = %(window_end)s
ORDER BY org_seq, org_id, record_seq;
