-- Instance items of the stage that are wholly covered (their on-demand rest in pg_temp.coverage_parts
-- has quantity and hours 0): only their covered parts remain.
-- `r.org_id = ANY (the parts' orgs)`: the stage holds every re-rated day (a million rows on a
-- re-rating); the bound array is one hash probe per stage row, so only the reserved orgs' items are
-- hashed and joined, not the whole stage.
DELETE FROM pg_temp.rated_days AS r
USING pg_temp.coverage_parts AS p
WHERE p.covered_by = '' AND p.quantity = 0 AND p.hours = 0
  AND r.org_id = p.org_id AND r.usage_date = p.usage_date AND r.profile_type = p.profile_type
  AND r.profile = p.profile AND r.instance_key = p.instance_key AND r.dimension = '' AND r.covered_by = ''
  AND r.charge_class = 'regular' AND r.entry = 'charge' AND r.org_id = ANY (%(org_ids)s::text[]);
