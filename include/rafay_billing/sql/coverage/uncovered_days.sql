-- Days from first_day (inclusive) to end_day (exclusive) that are not billed for the given orgs,
-- counting for each org only the days from its first listing on: (org_id, day, status, detail) with
-- status 'missing' where no coverage row exists; a `held` day (its newest extraction shrank) is not billed
-- until accepted or read again. A day billed with exceptions counts as billed once
-- none of its exceptions is open (each was billed later or waived by an operator).
SELECT o.org_id, d.day::date AS usage_date, coalesce(c.status, 'missing') AS status, c.detail
FROM unnest(%(org_ids)s::text[]) AS o (org_id)
JOIN billing.org_registry AS r ON r.org_id = o.org_id
CROSS JOIN LATERAL generate_series(
    greatest(%(first_day)s::date, r.first_listed_date), least(%(end_day)s::date - 1, coalesce(billing.expected_until(r.unlisted_from), %(end_day)s::date - 1)),
    interval '1 day'
) AS d (day)
LEFT JOIN billing.coverage AS c ON c.org_id = o.org_id AND c.usage_date = d.day::date
WHERE c.status IS NULL
   OR c.status IN ('failed', 'held')
   OR (c.status = 'exceptions' AND EXISTS (
           SELECT 1 FROM billing.open_exceptions AS e WHERE e.org_id = c.org_id AND e.usage_date = c.usage_date
       ))
ORDER BY o.org_id, d.day;
