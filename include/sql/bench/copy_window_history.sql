-- Benchmark set-up only: copy a window's landed usage to an earlier window, so the table holds
-- history as it does in production (the window being rated is then a fraction of the table).
INSERT INTO billing.usage_records (
    window_start, window_end, org_id, organization, org_seq, record_seq, profile_type, profile,
    instance, instance_id, instance_key, status, seed_usage, usage_hours, gpu_count, invalid_reason, run_id
)
SELECT window_start - %(shift)s, window_end - %(shift)s, org_id, organization, org_seq, record_seq, profile_type,
       profile, instance, instance_id, instance_key, status, seed_usage, usage_hours, gpu_count, invalid_reason,
       'history'
FROM billing.usage_records
WHERE window_start = %(window_start)s AND window_end = %(window_end)s;
