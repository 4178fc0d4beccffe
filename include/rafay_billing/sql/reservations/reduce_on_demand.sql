-- The on-demand rest of each partly covered instance item of the stage (pg_temp.rated_days): its
-- quantity and hours become what the reservations left (pg_temp.coverage_parts, covered_by ''), priced
-- as before, the amount rounded once.
-- `r.org_id = ANY (the parts' orgs)`: the stage holds every re-rated day (a million rows on a
-- re-rating); the bound array is one hash probe per stage row, so only the reserved orgs' items are
-- hashed and joined, not the whole stage.
UPDATE pg_temp.rated_days AS r
SET pricing_quantity = p.quantity, usage_hours = p.hours, amount = round(p.quantity * r.unit_price, r.minor_unit)
FROM pg_temp.coverage_parts AS p
WHERE p.covered_by = '' AND NOT (p.quantity = 0 AND p.hours = 0)
  AND r.org_id = p.org_id AND r.usage_date = p.usage_date AND r.profile_type = p.profile_type
  AND r.profile = p.profile AND r.instance_key = p.instance_key AND r.dimension = '' AND r.covered_by = ''
  AND r.charge_class = 'regular' AND r.entry = 'charge' AND r.org_id = ANY (%(org_ids)s::text[]);
