-- Held (org, day)s of [first_day, end_day) for the given orgs (all orgs when org_ids is NULL): what an
-- operator must accept (rafay-billing accept-shrink) or read again.
SELECT c.org_id, c.usage_date, c.organization, c.run_id, c.billed_run_id, c.detail
FROM billing.coverage AS c
WHERE c.status = 'held' AND c.usage_date >= %(first_day)s AND c.usage_date < %(end_day)s
  AND (%(org_ids)s::text[] IS NULL OR c.org_id = ANY (%(org_ids)s::text[]))
ORDER BY c.org_id, c.usage_date;
