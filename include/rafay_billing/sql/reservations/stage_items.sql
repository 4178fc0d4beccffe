-- The on-demand instance items of the given slices' orgs and days in this transaction's stage
-- (pg_temp.rated_days): what reservations may cover (the caller keeps the rows of its (org, day) pairs).
-- Dimensions are never covered; monthly units neither (only instance_hour and gpu_hour items).
-- Parameters: org_ids text[], usage_dates date[].
-- Why `= ANY` and no join with the slices: the stage has no statistics here, so a join was planned as a
-- loop over every slice for each of its rows (the stage holds every re-rated day: a million rows on a
-- re-rating); `= ANY` of a bound array is one hash probe per row.
SELECT r.org_id, r.usage_date, r.profile_type, r.profile, r.instance_key, r.pricing_unit, r.pricing_quantity,
       r.usage_hours, r.gpu_count
FROM pg_temp.rated_days AS r
WHERE r.org_id = ANY (%(org_ids)s::text[]) AND r.usage_date = ANY (%(usage_dates)s::date[])
  AND r.dimension = '' AND r.covered_by = '' AND r.charge_class = 'regular' AND r.entry = 'charge'
  AND r.pricing_unit IN ('instance_hour', 'gpu_hour')
ORDER BY r.org_id, r.usage_date, r.profile_type, r.profile, r.instance_key COLLATE "C";
