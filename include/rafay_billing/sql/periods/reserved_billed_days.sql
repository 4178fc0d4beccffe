-- The billed (org, day)s that reservation terms meet (issue 22, rules 2 and 7), with the run whose usage
-- billed each: after a reservation is added or changed they are rated again, so its coverage (or the
-- coverage it no longer gives) reaches every such day, closed or open. Held and failed days keep what
-- they hold, as in a close's re-rating. Days before billing_start (NULL: none) are never covered.
-- Parameters: org_ids text[], starts timestamptz[], ends timestamptz[] (NULL = open-ended), pairwise;
-- billing_start date.
SELECT DISTINCT c.billed_run_id, c.org_id, c.usage_date, c.organization
FROM unnest(%(org_ids)s::text[], %(starts)s::timestamptz[], %(ends)s::timestamptz[]) AS s (org_id, term_start, term_end)
JOIN billing.coverage AS c
  ON c.org_id = s.org_id
 AND billing.utc_midnight(c.usage_date) + interval '1 day' > s.term_start
 AND (s.term_end IS NULL OR billing.utc_midnight(c.usage_date) < s.term_end)
WHERE c.status IN ('billed', 'exceptions') AND c.billed_run_id IS NOT NULL
  AND (%(billing_start)s::date IS NULL OR c.usage_date >= %(billing_start)s::date)
ORDER BY c.billed_run_id, c.org_id, c.usage_date;
