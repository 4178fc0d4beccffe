-- Corrections of these closed days that sit in still-open periods are not issued yet: a new rating of
-- the day replaces them (and is compared with what was issued, not with them).
DELETE FROM billing.charge_line_items AS li
USING unnest(%(org_ids)s::text[], %(usage_dates)s::date[]) AS s (org_id, usage_date)
WHERE li.org_id = s.org_id AND li.usage_date = s.usage_date AND li.charge_class = 'correction'
  AND li.charge_level = 'day'
  AND NOT EXISTS (SELECT 1 FROM billing.billing_periods AS p WHERE p.period_start = li.billing_period_start);
