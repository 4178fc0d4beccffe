-- Orgs the ledger expects usage of on a day: listings covered it (billing.org_registry).
SELECT org_id, organization, first_listed_date
FROM billing.org_registry
WHERE first_listed_date <= %(day)s AND (unlisted_from IS NULL OR unlisted_from > %(day)s)
ORDER BY org_id;
