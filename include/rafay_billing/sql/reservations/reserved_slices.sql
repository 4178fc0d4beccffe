-- Which of the given (org, day) slices have a reservation (a current contract version) whose term meets
-- the day, from billing_start on (NULL: no start): only those are rated through the stage and covered;
-- every other slice keeps the nightly fast path. One probe of the current contracts' index per slice.
-- Parameters: org_ids text[], usage_dates date[] (the slices, pairwise), billing_start date (or NULL).
SELECT s.org_id, s.usage_date
FROM unnest(%(org_ids)s::text[], %(usage_dates)s::date[]) AS s (org_id, usage_date)
WHERE (%(billing_start)s::date IS NULL OR s.usage_date >= %(billing_start)s::date)
  AND EXISTS (
      SELECT 1 FROM billing.contract_versions AS c
      WHERE c.valid_to IS NULL AND c.org_id = s.org_id AND c.kind = 'reservation'
        AND c.term_start < billing.utc_midnight(s.usage_date) + interval '1 day'
        AND (c.term_end IS NULL OR c.term_end > billing.utc_midnight(s.usage_date))
  );
