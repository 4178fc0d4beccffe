-- The on-demand instance items of the given slices in this transaction's stage (pg_temp.rated_days):
-- what reservations may cover. Dimensions are never covered; monthly units neither (only instance_hour
-- and gpu_hour items). Parameters: org_ids text[], usage_dates date[].
SELECT r.org_id, r.usage_date, r.profile_type, r.profile, r.instance_key, r.pricing_unit, r.pricing_quantity,
       r.usage_hours, r.gpu_count
FROM pg_temp.rated_days AS r
JOIN unnest(%(org_ids)s::text[], %(usage_dates)s::date[]) AS s (org_id, usage_date)
  ON r.org_id = s.org_id AND r.usage_date = s.usage_date
WHERE r.dimension = '' AND r.covered_by = '' AND r.charge_class = 'regular' AND r.entry = 'charge'
  AND r.pricing_unit IN ('instance_hour', 'gpu_hour')
ORDER BY r.org_id, r.usage_date, r.profile_type, r.profile, r.instance_key COLLATE "C";
