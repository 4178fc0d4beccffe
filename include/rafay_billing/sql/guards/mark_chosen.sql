-- After guards/mark_rated.sql (the day's earlier extraction is `replaced`): the chosen ones are `rated`.
UPDATE billing.extractions SET status = 'rated', decided_at = now(), detail = NULL
WHERE extraction_seq = ANY (%(seqs)s::bigint[]) AND status <> 'rated';
