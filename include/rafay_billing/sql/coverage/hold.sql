-- Days whose newest extraction shrank: `held`, reason `usage_shrank`, naming the held run; the items of
-- the extraction the day holds (billed_run_id) stand.
INSERT INTO billing.coverage AS c (org_id, usage_date, organization, status, reason, run_id, billed_run_id, detail,
                                   updated_at)
SELECT s.org_id, s.usage_date, s.organization, 'held', 'usage_shrank', s.run_id, s.billed_run_id, s.detail, now()
FROM unnest(%(org_ids)s::text[], %(usage_dates)s::date[], %(organizations)s::text[], %(run_ids)s::text[],
            %(billed_run_ids)s::text[], %(details)s::text[])
     AS s (org_id, usage_date, organization, run_id, billed_run_id, detail)
ON CONFLICT (org_id, usage_date) DO UPDATE SET
    status = 'held', reason = 'usage_shrank', run_id = EXCLUDED.run_id, detail = EXCLUDED.detail, updated_at = now();
