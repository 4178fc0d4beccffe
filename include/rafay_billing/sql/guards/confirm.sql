-- The run's newest read of each (org, day) read the same as the day's rated extraction and is not
-- rated (rafay_billing.ledger.guards.confirm_unchanged): the rated extraction stands as of that read.
UPDATE billing.extractions AS h
SET confirmed_seq = n.extraction_seq
FROM unnest(%(org_ids)s::text[], %(usage_dates)s::date[]) AS s (org_id, usage_date)
CROSS JOIN LATERAL (
    SELECT e.extraction_seq FROM billing.extractions AS e
    WHERE e.org_id = s.org_id AND e.usage_date = s.usage_date AND e.run_id = %(run_id)s
    ORDER BY e.extraction_seq DESC
    LIMIT 1
) AS n
WHERE h.org_id = s.org_id AND h.usage_date = s.usage_date AND h.status = 'rated'
  AND n.extraction_seq > greatest(h.extraction_seq, h.confirmed_seq)
RETURNING h.org_id, h.usage_date;
