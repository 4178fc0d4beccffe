-- Open rating exceptions (not billed by a later rating, not waived), newest day first, searchable by
-- org id or name and reason, one page at a time; billing_period_start is the period whose close each
-- one blocks (its day's, or for a closed day re-billed since, the period its correction lands in).
SELECT usage_date, org_id, organization, profile_type, profile, instance, instance_id, record_seq, reason,
       detail, usage_hours, gpu_count, run_id, billing_period_start, count(*) OVER () AS total_rows
FROM billing.open_exceptions
WHERE %(pattern)s::text IS NULL OR org_id ILIKE %(pattern)s OR organization ILIKE %(pattern)s
      OR reason ILIKE %(pattern)s
ORDER BY usage_date DESC, org_id, profile, instance_key, record_seq
LIMIT %(limit)s OFFSET %(offset)s;
