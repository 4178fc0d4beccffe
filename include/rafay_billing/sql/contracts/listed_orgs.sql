-- Which of these org ids the pipeline has ever listed (billing.org_registry).
SELECT org_id FROM billing.org_registry WHERE org_id = ANY(%(orgs)s::text[]);
