-- A window's rating exceptions (operators, tests, the final check).
SELECT org_id, organization, profile_type, profile, instance, instance_id, instance_key, record_seq,
       usage_hours, gpu_count, price_id, reason, detail, run_id
FROM billing.rating_exceptions
WHERE window_start = %(window_start)s AND window_end = %(window_end)s
ORDER BY org_id, record_seq;
