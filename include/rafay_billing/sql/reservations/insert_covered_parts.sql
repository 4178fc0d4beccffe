-- Covered parts of the stage's instance items (pg_temp.rated_days), from pg_temp.coverage_parts: each a
-- copy of the on-demand item with its covered quantity and hours, unit_price 0, amount 0, the
-- reservation as covered_by and contract_id, and list_unit_price = the on-demand unit price it would
-- have cost.
-- The copy is made in a LATERAL call: `(jsonb_populate_record(...)).*` would call the function once per
-- column of the row (some 30 times per part).
-- `r.org_id = ANY (the parts' orgs)`: the stage holds every re-rated day (a million rows on a
-- re-rating); the bound array is one hash probe per stage row, so only the reserved orgs' items are
-- hashed and joined, not the whole stage.
INSERT INTO pg_temp.rated_days
SELECT c.*
FROM pg_temp.coverage_parts AS p
JOIN pg_temp.rated_days AS r
  ON r.org_id = p.org_id AND r.usage_date = p.usage_date AND r.profile_type = p.profile_type
 AND r.profile = p.profile AND r.instance_key = p.instance_key AND r.dimension = '' AND r.covered_by = ''
 AND r.charge_class = 'regular' AND r.entry = 'charge' AND r.org_id = ANY (%(org_ids)s::text[])
CROSS JOIN LATERAL jsonb_populate_record(r, jsonb_build_object(
           'covered_by', p.covered_by, 'contract_id', p.covered_by, 'list_unit_price', r.unit_price,
           'unit_price', 0, 'amount', round(p.quantity * 0, r.minor_unit),
           'pricing_quantity', p.quantity, 'usage_hours', p.hours)) AS c
WHERE p.covered_by <> '';
