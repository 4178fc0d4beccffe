-- Re-billing a day replaces its line items, whichever run or window wrote them: no hour billed twice.
-- The slices' items that the fresh rating (pg_temp.rated_days) does not hold with the very same values
-- are deleted; an item rated again exactly as it stands is left as it is, so re-rating an unchanged
-- day writes nothing (no dead rows, no index or trigger work). Numbers compare with their scale, so
-- 2.10 and 2.1 differ as they would in a report. rated_at is not compared: it stays the time the
-- item's values were first rated.
-- Only the item's identity (org, day, profile type, profile, instance, dimension) is an equality the
-- planner hashes; every other column (all NOT NULL ones compare as with =) is one row comparison
-- checked on the match: hashing 18 columns (8 of them scale() calls) on both sides cost 15 per cent more.
DELETE FROM billing.charge_line_items AS li
USING unnest(%(org_ids)s::text[], %(usage_dates)s::date[]) AS s (org_id, usage_date)
WHERE li.org_id = s.org_id AND li.usage_date = s.usage_date AND li.charge_level = 'day'
  AND NOT EXISTS (
      SELECT 1 FROM pg_temp.rated_days AS r
      WHERE r.org_id = li.org_id AND r.usage_date = li.usage_date AND r.profile_type = li.profile_type
        AND r.profile = li.profile AND r.instance_key = li.instance_key AND r.dimension = li.dimension
        AND (r.covered_by, r.charge_class, r.correction_seq, r.entry,
             r.window_start, r.window_end, r.organization, r.instance, r.instance_id,
             r.gpu_count, r.pricing_unit, r.currency, r.minor_unit, r.price_id, r.run_id,
             r.billing_period_start, r.reverses_run_id, r.labels, r.contract_id, r.charge_category,
             r.usage_hours, scale(r.usage_hours), r.pricing_quantity, scale(r.pricing_quantity),
             r.unit_price, scale(r.unit_price), r.amount, scale(r.amount),
             r.list_unit_price, scale(r.list_unit_price))
            IS NOT DISTINCT FROM
            (li.covered_by, li.charge_class, li.correction_seq, li.entry,
             li.window_start, li.window_end, li.organization, li.instance, li.instance_id,
             li.gpu_count, li.pricing_unit, li.currency, li.minor_unit, li.price_id, li.run_id,
             li.billing_period_start, li.reverses_run_id, li.labels, li.contract_id, li.charge_category,
             li.usage_hours, scale(li.usage_hours), li.pricing_quantity, scale(li.pricing_quantity),
             li.unit_price, scale(li.unit_price), li.amount, scale(li.amount),
             li.list_unit_price, scale(li.list_unit_price))
  );
