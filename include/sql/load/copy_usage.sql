-- Stream one org's usage CSV (docs/design.md columns, in order, with a header) into the table.
-- Empty unquoted cells are NULL only where NULL means "absent" (instance_id, usage_hours, gpu_count,
-- invalid_reason); text columns keep '' (the seed prints '' for a missing instance or status).
COPY billing.usage_records (
    window_start, window_end, org_id, organization, org_seq, record_seq, profile_type, profile,
    instance, instance_id, instance_key, status, seed_usage, usage_hours, gpu_count, invalid_reason
)
FROM STDIN WITH (
    FORMAT csv,
    HEADER true,
    ENCODING 'UTF8',
    FORCE_NOT_NULL (org_id, organization, profile_type, profile, instance, instance_key, status, seed_usage)
);
