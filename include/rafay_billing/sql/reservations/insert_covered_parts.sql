-- Covered parts of the stage's instance items (pg_temp.rated_days): each a copy of the on-demand item
-- with its covered quantity and hours, unit_price 0, amount 0, the reservation as covered_by and
-- contract_id, and list_unit_price = the on-demand unit price it would have cost.
-- Parameters: the parts, pairwise arrays: org_ids, usage_dates, profile_types, profiles, instance_keys,
-- covered_bys, quantities (numeric[]), hours (numeric[]).
INSERT INTO pg_temp.rated_days
SELECT (jsonb_populate_record(r, jsonb_build_object(
           'covered_by', p.covered_by, 'contract_id', p.covered_by, 'list_unit_price', r.unit_price,
           'unit_price', 0, 'amount', round(p.quantity * 0, r.minor_unit),
           'pricing_quantity', p.quantity, 'usage_hours', p.hours))).*
FROM unnest(%(org_ids)s::text[], %(usage_dates)s::date[], %(profile_types)s::text[], %(profiles)s::text[],
            %(instance_keys)s::text[], %(covered_bys)s::text[], %(quantities)s::numeric[], %(hours)s::numeric[])
     AS p (org_id, usage_date, profile_type, profile, instance_key, covered_by, quantity, hours)
JOIN pg_temp.rated_days AS r
  ON r.org_id = p.org_id AND r.usage_date = p.usage_date AND r.profile_type = p.profile_type
 AND r.profile = p.profile AND r.instance_key = p.instance_key AND r.dimension = '' AND r.covered_by = ''
 AND r.charge_class = 'regular' AND r.entry = 'charge';
