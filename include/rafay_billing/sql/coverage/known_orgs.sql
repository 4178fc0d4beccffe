-- Every organization the registry knows (listed or sighted before), gone or not: on a console that
-- lists an org only on days with usage (partner_only), these are billed on idle days too (with zero).
SELECT org_id, organization
FROM billing.org_registry
ORDER BY org_id;
