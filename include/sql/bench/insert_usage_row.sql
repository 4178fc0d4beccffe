-- Benchmark baseline only: what a row-by-row loader would run for every usage row.
INSERT INTO billing.usage_records (
    window_start, window_end, org_id, organization, org_seq, record_seq, profile_type, profile,
    instance, instance_id, instance_key, status, seed_usage, usage_hours, gpu_count, invalid_reason, run_id
) VALUES (
    %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s
);
