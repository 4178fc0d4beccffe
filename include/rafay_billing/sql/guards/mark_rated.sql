-- The extractions the slices are now rated from: each becomes the one its day holds (the one held
-- before is `replaced`), in the rating's transaction.
WITH s AS (
    SELECT * FROM unnest(%(seqs)s::bigint[]) AS s (extraction_seq)
),
chosen AS (
    SELECT e.extraction_seq, e.org_id, e.usage_date FROM billing.extractions AS e JOIN s USING (extraction_seq)
),
replaced AS (
    UPDATE billing.extractions AS e SET status = 'replaced', decided_at = now()
    FROM chosen AS c
    WHERE e.org_id = c.org_id AND e.usage_date = c.usage_date AND e.status = 'rated'
      AND e.extraction_seq <> c.extraction_seq
    RETURNING e.extraction_seq
)
SELECT count(*) FROM replaced;
