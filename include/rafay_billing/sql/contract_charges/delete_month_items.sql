-- The open month's own contract charges written by an earlier preparation of its close (drafts awaiting
-- approval): the close computes them again from the ledger as it stands, so they are replaced, never doubled.
DELETE FROM billing.charge_line_items AS li
WHERE li.usage_date = %(period_start)s AND li.billing_period_start = %(period_start)s
  AND li.charge_level = 'month' AND li.charge_class = 'regular'
  AND NOT EXISTS (SELECT 1 FROM billing.billing_periods AS p WHERE p.period_start = li.billing_period_start);
