-- An (org, day) this run could not extract or load: `failed`, with why. Line items of an earlier good
-- run, if any, stand (billed_run_id is kept), but the day needs attention until it is billed again.
INSERT INTO billing.coverage AS c (org_id, usage_date, organization, status, run_id, billed_run_id, detail, updated_at)
SELECT s.org_id, s.usage_date, s.organization, 'failed', %(run_id)s, NULL, s.detail, now()
FROM unnest(%(org_ids)s::text[], %(usage_dates)s::date[], %(organizations)s::text[], %(details)s::text[])
     AS s (org_id, usage_date, organization, detail)
ON CONFLICT (org_id, usage_date) DO UPDATE SET
    organization = EXCLUDED.organization, status = 'failed', run_id = EXCLUDED.run_id,
    detail = EXCLUDED.detail, updated_at = now();
