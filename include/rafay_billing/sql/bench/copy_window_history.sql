-- Benchmark set-up only: copy one day's usage landed by a run to the day %(days_back)s days earlier, as
-- another run's, so the table holds history as it does in production (the day being rated is then a
-- fraction of the table). usage_date, window_start/window_end (that day's UTC bounds, as
-- usage_records_one_day requires) and each record's interval (shifted in UTC) move back together.
INSERT INTO billing.usage_records (
    org_id, usage_date, run_id, record_seq, window_start, window_end, organization, org_seq, profile_type,
    profile, instance, instance_id, instance_key, status, seed_usage, usage_hours, gpu_count, invalid_reason,
    record_start, record_end, source_dir, source_page, source_index
)
SELECT org_id, usage_date - %(days_back)s::int, %(history_run_id)s, record_seq,
       billing.utc_midnight(usage_date - %(days_back)s::int),
       billing.utc_midnight(usage_date - %(days_back)s::int + 1),
       organization, org_seq, profile_type, profile, instance, instance_id, instance_key, status, seed_usage,
       usage_hours, gpu_count, invalid_reason,
       to_char((record_start::timestamptz AT TIME ZONE 'UTC') - make_interval(days => %(days_back)s::int),
               'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
       to_char((record_end::timestamptz AT TIME ZONE 'UTC') - make_interval(days => %(days_back)s::int),
               'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
       source_dir, source_page, source_index
FROM billing.usage_records
WHERE usage_date = %(usage_date)s AND run_id = %(run_id)s;
