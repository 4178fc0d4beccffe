-- Benchmark baseline only: what a row-by-row loader would run for every usage row: the CSV's columns
-- (rafay_billing.usage.USAGE_COLUMNS, in order), then what load_org_usage supplies through settings.
INSERT INTO billing.usage_records (
    window_start, window_end, org_id, organization, org_seq, record_seq, profile_type, profile,
    instance, instance_id, instance_key, status, seed_usage, usage_hours, gpu_count, invalid_reason,
    record_start, record_end, source_page, source_index, dimensions, labels,
    usage_date, run_id, source_dir
) VALUES (
    %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s
);
