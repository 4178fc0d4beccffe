-- The on-demand rest of each covered instance item of the stage (pg_temp.rated_days): its quantity and
-- hours become what the reservations left, priced as before (amount rounded once); an item left with
-- nothing (quantity and hours 0: wholly covered) is removed.
-- Parameters: pairwise arrays org_ids, usage_dates, profile_types, profiles, instance_keys,
-- quantities (numeric[]), hours (numeric[]).
WITH rest AS (
    SELECT * FROM unnest(%(org_ids)s::text[], %(usage_dates)s::date[], %(profile_types)s::text[],
                         %(profiles)s::text[], %(instance_keys)s::text[], %(quantities)s::numeric[],
                         %(hours)s::numeric[])
        AS p (org_id, usage_date, profile_type, profile, instance_key, quantity, hours)
),
emptied AS (
    DELETE FROM pg_temp.rated_days AS r
    USING rest AS p
    WHERE p.quantity = 0 AND p.hours = 0
      AND r.org_id = p.org_id AND r.usage_date = p.usage_date AND r.profile_type = p.profile_type
      AND r.profile = p.profile AND r.instance_key = p.instance_key AND r.dimension = '' AND r.covered_by = ''
      AND r.charge_class = 'regular' AND r.entry = 'charge'
    RETURNING 1
)
UPDATE pg_temp.rated_days AS r
SET pricing_quantity = p.quantity, usage_hours = p.hours, amount = round(p.quantity * r.unit_price, r.minor_unit)
FROM rest AS p
WHERE NOT (p.quantity = 0 AND p.hours = 0)
  AND r.org_id = p.org_id AND r.usage_date = p.usage_date AND r.profile_type = p.profile_type
  AND r.profile = p.profile AND r.instance_key = p.instance_key AND r.dimension = '' AND r.covered_by = ''
  AND r.charge_class = 'regular' AND r.entry = 'charge';
