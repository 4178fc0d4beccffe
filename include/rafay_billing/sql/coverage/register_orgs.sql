-- Organizations a run registers, each with its first and last expected day of this run
-- (coverage.register_orgs computes them: a scheduled run's day, or a day with usage): from the first
-- on, the org is expected to have every day billed (until a full listing no longer holds it:
-- coverage/mark_unlisted.sql). An org's first day only ever moves earlier, its last only later. On a
-- ledger's first scheduled run (an empty registry) the deployment's billing start date counts as the
-- first day, if earlier (start_floor; NULL for a backfill or a conf window, which least() ignores):
-- the deployment bills from there, so the orgs it lists first were there from the start. Orgs that
-- appear later are new tenants.
WITH registry AS MATERIALIZED (
    SELECT NOT EXISTS (SELECT 1 FROM billing.org_registry) AS is_empty
)
INSERT INTO billing.org_registry AS r (
    org_id, organization, first_listed_date, last_listed_date, last_listed_at, last_run_id
)
SELECT s.org_id, s.organization,
       CASE WHEN registry.is_empty THEN least(s.first_day, %(start_floor)s::date) ELSE s.first_day END,
       s.last_day, now(), %(run_id)s
FROM unnest(%(org_ids)s::text[], %(organizations)s::text[], %(first_days)s::date[], %(last_days)s::date[])
     AS s (org_id, organization, first_day, last_day)
CROSS JOIN registry
ON CONFLICT (org_id) DO UPDATE SET
    organization = EXCLUDED.organization,
    first_listed_date = least(r.first_listed_date, EXCLUDED.first_listed_date),
    last_listed_date = greatest(r.last_listed_date, EXCLUDED.last_listed_date),
    -- listed again at or after the day it was missed: expected again
    unlisted_from = CASE WHEN EXCLUDED.last_listed_date >= r.unlisted_from THEN NULL ELSE r.unlisted_from END,
    last_listed_at = now(), last_run_id = EXCLUDED.last_run_id;
