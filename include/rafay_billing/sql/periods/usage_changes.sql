-- For each (org, day), how the usage a new run landed (run_id) compares with the usage that billed the
-- day (coverage.billed_run_id): record counts and hours of both, and whether anything that rating reads
-- differs (a record more or less, other hours, GPU count, instance or profile). Status and record times
-- are left out: an instance stopped since, or a record re-cut, bills the same.
WITH s AS (
    SELECT s.org_id, s.usage_date, c.billed_run_id
    FROM unnest(%(org_ids)s::text[], %(usage_dates)s::date[]) AS s (org_id, usage_date)
    LEFT JOIN billing.coverage AS c ON c.org_id = s.org_id AND c.usage_date = s.usage_date
)
SELECT s.org_id, s.usage_date, s.billed_run_id,
       old.records AS old_records, old.hours AS old_hours, new.records AS new_records, new.hours AS new_hours,
       s.billed_run_id IS NULL OR EXISTS (
           (SELECT u.profile_type, u.profile, u.instance, u.instance_id, u.instance_key, u.usage_hours, u.gpu_count,
                   u.invalid_reason
            FROM billing.usage_records AS u
            WHERE u.org_id = s.org_id AND u.usage_date = s.usage_date AND u.run_id = %(run_id)s
            EXCEPT ALL
            SELECT u.profile_type, u.profile, u.instance, u.instance_id, u.instance_key, u.usage_hours, u.gpu_count,
                   u.invalid_reason
            FROM billing.usage_records AS u
            WHERE u.org_id = s.org_id AND u.usage_date = s.usage_date AND u.run_id = s.billed_run_id)
           UNION ALL
           (SELECT u.profile_type, u.profile, u.instance, u.instance_id, u.instance_key, u.usage_hours, u.gpu_count,
                   u.invalid_reason
            FROM billing.usage_records AS u
            WHERE u.org_id = s.org_id AND u.usage_date = s.usage_date AND u.run_id = s.billed_run_id
            EXCEPT ALL
            SELECT u.profile_type, u.profile, u.instance, u.instance_id, u.instance_key, u.usage_hours, u.gpu_count,
                   u.invalid_reason
            FROM billing.usage_records AS u
            WHERE u.org_id = s.org_id AND u.usage_date = s.usage_date AND u.run_id = %(run_id)s)
       ) AS changed
FROM s
CROSS JOIN LATERAL (
    SELECT count(*) AS records, coalesce(sum(u.usage_hours), 0) AS hours FROM billing.usage_records AS u
    WHERE u.org_id = s.org_id AND u.usage_date = s.usage_date AND u.run_id = s.billed_run_id
) AS old
CROSS JOIN LATERAL (
    SELECT count(*) AS records, coalesce(sum(u.usage_hours), 0) AS hours FROM billing.usage_records AS u
    WHERE u.org_id = s.org_id AND u.usage_date = s.usage_date AND u.run_id = %(run_id)s
) AS new
ORDER BY s.org_id, s.usage_date;
