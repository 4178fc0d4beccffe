-- The slices' fresh line items (pg_temp.rated_days) that the ledger does not hold yet, into
-- billing.charge_line_items (every trigger and constraint of the table applies). Slices listed in
-- kept_org_ids/kept_usage_dates still hold the items delete_changed_items.sql left because they were
-- unchanged: those are skipped by key; the other slices hold no items, and all of theirs go in.
-- Inserted in key order, which keeps the key index's inserts local.
INSERT INTO billing.charge_line_items (
    org_id, usage_date, profile, instance_key, dimension, window_start, window_end, organization,
    profile_type, instance, instance_id, usage_hours, gpu_count, pricing_unit, pricing_quantity, unit_price,
    currency, minor_unit, amount, price_id, run_id, billing_period_start, labels, covered_by, contract_id,
    list_unit_price
)
SELECT r.org_id, r.usage_date, r.profile, r.instance_key, r.dimension, r.window_start, r.window_end,
       r.organization, r.profile_type, r.instance, r.instance_id, r.usage_hours, r.gpu_count, r.pricing_unit,
       r.pricing_quantity, r.unit_price, r.currency, r.minor_unit, r.amount, r.price_id, r.run_id,
       r.billing_period_start, r.labels, r.covered_by, r.contract_id, r.list_unit_price
FROM pg_temp.rated_days AS r
JOIN unnest(%(org_ids)s::text[], %(usage_dates)s::date[]) AS s (org_id, usage_date)
  ON r.org_id = s.org_id AND r.usage_date = s.usage_date
WHERE (r.org_id, r.usage_date) NOT IN (
          SELECT k.org_id, k.usage_date
          FROM unnest(%(kept_org_ids)s::text[], %(kept_usage_dates)s::date[]) AS k (org_id, usage_date)
      )
   OR NOT EXISTS (
          SELECT 1 FROM billing.charge_line_items AS li
          WHERE li.org_id = r.org_id AND li.usage_date = r.usage_date AND li.profile_type = r.profile_type
            AND li.profile = r.profile
            AND li.instance_key = r.instance_key AND li.dimension = r.dimension AND li.covered_by = r.covered_by
            AND li.charge_class = 'regular' AND li.correction_seq = 0 AND li.entry = 'charge'
            -- bounds the lookup to the kept slices' orgs and days, however it is planned
            AND li.org_id = ANY (%(kept_org_ids)s::text[]) AND li.usage_date = ANY (%(kept_usage_dates)s::date[])
      )
ORDER BY r.org_id, r.usage_date, r.profile_type, r.profile, r.instance_key, r.dimension, r.covered_by;
