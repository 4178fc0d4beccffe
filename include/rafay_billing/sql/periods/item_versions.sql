-- Which row version each line item of the period's days is (its xmin and ctid change whenever a
-- rating rewrites it): compared before and after the close's re-rating to count the items it changed.
SELECT li.org_id, li.usage_date, li.profile_type, li.profile, li.instance_key, li.dimension, li.covered_by,
       li.charge_level, li.charge_class,
       li.correction_seq, li.entry, li.xmin::text || '/' || li.ctid::text AS version
FROM billing.charge_line_items AS li
WHERE li.usage_date >= %(period_start)s AND li.usage_date < %(period_end)s
  AND li.billing_period_start = %(period_start)s;
