-- Held days whose rated extraction a later, unchanged read confirmed: the shrink it held was older
-- than that read, so the day is as billed (the coverage trigger holds it again if a newer shrink waits).
UPDATE billing.coverage AS c
SET status = CASE WHEN c.exceptions > 0 THEN 'exceptions' ELSE 'billed' END, run_id = c.billed_run_id,
    detail = NULL, updated_at = now()
FROM unnest(%(org_ids)s::text[], %(usage_dates)s::date[]) AS s (org_id, usage_date)
WHERE c.org_id = s.org_id AND c.usage_date = s.usage_date AND c.status = 'held' AND c.billed_run_id IS NOT NULL;
