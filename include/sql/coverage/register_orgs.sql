-- Organizations a run's listing returned, and the first day a listing covered for each.
INSERT INTO billing.org_registry AS r (org_id, organization, first_listed_date, last_listed_at, last_run_id)
SELECT s.org_id, s.organization, %(first_day)s, now(), %(run_id)s
FROM unnest(%(org_ids)s::text[], %(organizations)s::text[]) AS s (org_id, organization)
ON CONFLICT (org_id) DO UPDATE SET
    organization = EXCLUDED.organization,
    first_listed_date = least(r.first_listed_date, EXCLUDED.first_listed_date),
    last_listed_at = now(), last_run_id = EXCLUDED.last_run_id;
