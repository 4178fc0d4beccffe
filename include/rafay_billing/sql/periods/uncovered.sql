-- (org, day)s of [period_start, period_end) that the ledger should hold and does not: for every org of
-- the registry, each day from its first listing until it left Rafay (if it did) whose coverage is missing, failed
-- or held (a shrinking re-read waits for accept-shrink or a new read; allow_exceptions never closes over it).
-- `billed` and `exceptions` (billed, some records not) are covered; open exceptions are read separately.
SELECT r.org_id, r.organization, d.day::date AS usage_date, coalesce(c.status, 'missing') AS status, c.detail
FROM billing.org_registry AS r
CROSS JOIN LATERAL generate_series(
    greatest(%(period_start)s::date, r.first_listed_date), least(%(period_end)s::date - 1, coalesce(billing.expected_until(r.unlisted_from), %(period_end)s::date - 1)),
    interval '1 day'
) AS d (day)
LEFT JOIN billing.coverage AS c ON c.org_id = r.org_id AND c.usage_date = d.day::date
WHERE coalesce(c.status, 'missing') NOT IN ('billed', 'exceptions')
ORDER BY r.org_id, d.day;
