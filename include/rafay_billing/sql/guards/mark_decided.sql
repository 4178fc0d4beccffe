-- Extractions that were not rated: `held` (a shrinking re-read) or `superseded` (older than what the
-- day holds), with why.
UPDATE billing.extractions AS e SET status = s.status, detail = s.detail, decided_at = now()
FROM unnest(%(seqs)s::bigint[], %(statuses)s::text[], %(details)s::text[]) AS s (extraction_seq, status, detail)
WHERE e.extraction_seq = s.extraction_seq AND e.status <> 'rated';
