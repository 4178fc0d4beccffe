-- What this load landed for the (org, day, run) is the extraction `extraction_seq` read: its record
-- count and total instance hours (the hours of its records that have valid hours; what the shrink guard
-- compares). A retried load of the same extraction updates its row; a seq already taken by another
-- (org, day, run) updates nothing (the caller refuses the load).
INSERT INTO billing.extractions AS e (extraction_seq, org_id, usage_date, run_id, records, instance_hours)
SELECT %(extraction_seq)s, %(org_id)s, %(usage_date)s, %(run_id)s, count(*),
       coalesce(sum(u.usage_hours) FILTER (WHERE u.usage_hours >= 0 AND u.invalid_reason IS NULL), 0)
FROM billing.usage_records AS u
WHERE u.org_id = %(org_id)s AND u.usage_date = %(usage_date)s AND u.run_id = %(run_id)s
ON CONFLICT (extraction_seq) DO UPDATE SET
    records = EXCLUDED.records, instance_hours = EXCLUDED.instance_hours, landed_at = now()
WHERE e.org_id = EXCLUDED.org_id AND e.usage_date = EXCLUDED.usage_date AND e.run_id = EXCLUDED.run_id
RETURNING e.extraction_seq;
