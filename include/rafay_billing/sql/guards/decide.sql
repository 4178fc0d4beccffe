-- Whether the run's newest extraction of each (org, day) may replace what the day holds (issue 21,
-- rules 2 and 3), under the slices' rating locks:
--   `rerate`     it is the extraction the day holds (a price change, a retry): never guarded;
--   `rate`       the day holds none, or it is newer and did not shrink, or an operator accepted it;
--   `superseded` it is older (lower seq) than the extraction the day holds, or than a later read that
--                confirmed it (read the same, so was not rated: confirmed_seq);
--   `held`       newer, but its total instance hours are below ratio x the held extraction's, or it has
--                no records where the held one has some.
SELECT s.org_id, s.usage_date, n.extraction_seq, n.records, n.instance_hours,
       greatest(h.extraction_seq, h.confirmed_seq) AS held_seq, h.run_id AS held_run_id, h.records AS held_records,
       h.instance_hours AS held_hours,
       CASE
           WHEN n.extraction_seq IS NULL OR h.extraction_seq IS NULL THEN 'rate'
           WHEN n.extraction_seq = h.extraction_seq THEN 'rerate'
           WHEN n.extraction_seq < greatest(h.extraction_seq, h.confirmed_seq) THEN 'superseded'
           WHEN n.accepted_at IS NOT NULL THEN 'rate'
           WHEN n.records = 0 AND h.records > 0 THEN 'held'
           WHEN n.instance_hours < %(ratio)s::numeric * h.instance_hours THEN 'held'
           ELSE 'rate'
       END AS decision
FROM unnest(%(org_ids)s::text[], %(usage_dates)s::date[]) AS s (org_id, usage_date)
LEFT JOIN LATERAL (
    SELECT e.* FROM billing.extractions AS e
    WHERE e.org_id = s.org_id AND e.usage_date = s.usage_date AND e.run_id = %(run_id)s
    ORDER BY e.extraction_seq DESC
    LIMIT 1
) AS n ON true
LEFT JOIN billing.extractions AS h
    ON h.org_id = s.org_id AND h.usage_date = s.usage_date AND h.status = 'rated'
ORDER BY s.org_id, s.usage_date;
