-- The currencies of the prices an org can have: its own rows and the rows for any org.
SELECT DISTINCT o.org_id, p.currency::text AS currency
FROM unnest(%(orgs)s::text[]) AS o (org_id)
JOIN billing.price_book AS p ON p.org_id IS NULL OR p.org_id = o.org_id;
