-- The orgs with a current contract (billing.contracts), searchable by org id or name, paged: the
-- Contracts section's list. organization: the org's latest listed name, when it was ever listed.
WITH orgs AS (
    SELECT c.org_id, count(*) AS contracts,
           count(*) FILTER (WHERE c.kind = 'reservation') AS reservations,
           (SELECT r.organization FROM billing.org_registry AS r WHERE r.org_id = c.org_id) AS organization
    FROM billing.contracts AS c
    GROUP BY c.org_id
)
SELECT o.org_id, o.organization, o.contracts, o.reservations, count(*) OVER () AS total_rows
FROM orgs AS o
WHERE %(pattern)s::text IS NULL OR o.org_id ILIKE %(pattern)s OR o.organization ILIKE %(pattern)s
ORDER BY o.org_id
LIMIT %(limit)s OFFSET %(offset)s;
