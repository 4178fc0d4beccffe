-- One page of the org's line items carried by a period's documents (its own days and corrections of
-- earlier ones), in the ledger's key order (every key column but the org: a column left out lets two items
-- share a cursor key, and a page ending on one skips the other) after the cursor's key (keyset paging:
-- stable while nothing is inserted, which a closed period's ledger refuses). The cursor only positions;
-- the org comes from the token.
SELECT li.usage_date, li.profile_type, li.profile, li.instance_key, li.dimension, li.covered_by, li.charge_level,
       li.charge_class, li.correction_seq, li.entry, li.window_start, li.window_end, li.organization, li.instance,
       li.instance_id, li.labels, li.usage_hours, li.gpu_count, li.pricing_unit, li.pricing_quantity,
       li.unit_price, li.currency, li.amount, li.price_id, li.billing_period_start, li.contract_id,
       li.list_unit_price
FROM billing.charge_line_items AS li
WHERE li.org_id = %(org_id)s AND li.billing_period_start = %(period_start)s
  AND (NOT %(after)s::boolean
       OR (li.usage_date, li.profile_type, li.profile, li.instance_key, li.dimension, li.covered_by,
           li.charge_level, li.charge_class, li.correction_seq, li.entry)
          > (%(k_usage_date)s::date, %(k_profile_type)s::text, %(k_profile)s::text, %(k_instance_key)s::text,
             %(k_dimension)s::text, %(k_covered_by)s::text, %(k_charge_level)s::text, %(k_charge_class)s::text,
             %(k_correction_seq)s::integer, %(k_entry)s::text))
ORDER BY li.usage_date, li.profile_type, li.profile, li.instance_key, li.dimension, li.covered_by, li.charge_level,
         li.charge_class, li.correction_seq, li.entry
LIMIT %(limit)s;
