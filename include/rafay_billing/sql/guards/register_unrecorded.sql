-- Slices to rate whose run has no extraction on record (usage landed by other means than
-- rafay_billing.ledger.load, e.g. before migration 009 or by a tool): their landed rows count as an
-- extraction read now, with a seq taken now.
INSERT INTO billing.extractions (extraction_seq, org_id, usage_date, run_id, records, instance_hours)
SELECT nextval('billing.extraction_seq'), s.org_id, s.usage_date, %(run_id)s, u.records, u.hours
FROM unnest(%(org_ids)s::text[], %(usage_dates)s::date[]) AS s (org_id, usage_date)
CROSS JOIN LATERAL (
    SELECT count(*)::integer AS records, coalesce(sum(r.usage_hours) FILTER (WHERE r.usage_hours >= 0 AND r.invalid_reason IS NULL), 0) AS hours
    FROM billing.usage_records AS r
    WHERE r.org_id = s.org_id AND r.usage_date = s.usage_date AND r.run_id = %(run_id)s
) AS u
WHERE NOT EXISTS (
    SELECT 1 FROM billing.extractions AS e
    WHERE e.org_id = s.org_id AND e.usage_date = s.usage_date AND e.run_id = %(run_id)s
);
