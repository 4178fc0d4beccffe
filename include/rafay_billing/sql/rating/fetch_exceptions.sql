-- The rating exceptions of a window's days (operators, tests, the final check).
SELECT org_id, usage_date, organization, profile_type, profile, instance, instance_id, instance_key, record_seq,
       usage_hours, gpu_count, price_id, reason, detail, run_id, dimension
FROM billing.rating_exceptions
WHERE usage_date >= %(first_day)s AND usage_date < %(end_day)s
ORDER BY org_id, usage_date, record_seq, dimension;
