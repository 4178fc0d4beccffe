-- MRC corrections of a closed month that sit in a still-open period are not issued yet: computing the
-- month's MRC again replaces them (and compares the result with what was issued), never adds to them.
DELETE FROM billing.charge_line_items AS li
WHERE li.usage_date = %(month)s AND li.charge_level = 'month' AND li.charge_class = 'correction'
  AND li.charge_category = 'usage'
  AND NOT EXISTS (SELECT 1 FROM billing.billing_periods AS p WHERE p.period_start = li.billing_period_start);
