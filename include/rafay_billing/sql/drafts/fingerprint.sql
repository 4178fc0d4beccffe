-- The fingerprint of what a period carries, as a SHA-256 (hex) over, in a fixed order:
--   * its line items (billing_period_start = the period): its own days' regular items and the corrections
--     that landed in it, month-level charges written as items too, each with every value a document shows;
--   * the registry names of the orgs they bill (a document carries the name);
--   * the rating exceptions whose correction lands in it (open or not) and the waivers of its exceptions
--     (those of its days, and those matching an exception landing in it).
-- Work on other periods (the nightly run of the next month's days) changes none of these rows.
WITH items AS (
    SELECT string_agg(
               concat_ws('|', li.org_id, li.usage_date, li.profile_type, li.profile, li.instance_key, li.dimension,
                         li.covered_by, li.charge_level, li.charge_class, li.correction_seq, li.entry, li.currency,
                         li.price_id, li.pricing_unit, li.unit_price, li.pricing_quantity, li.amount, li.contract_id,
                         li.list_unit_price),
               E'\n' ORDER BY li.org_id, li.usage_date, li.profile_type, li.profile, li.instance_key, li.dimension,
                              li.covered_by, li.charge_level, li.charge_class, li.correction_seq, li.entry) AS text
    FROM billing.charge_line_items AS li
    WHERE li.billing_period_start = %(period_start)s
),
names AS (
    SELECT string_agg(concat_ws('|', r.org_id, r.organization), E'\n' ORDER BY r.org_id) AS text
    FROM billing.org_registry AS r
    WHERE r.org_id IN (SELECT li.org_id FROM billing.charge_line_items AS li
                       WHERE li.billing_period_start = %(period_start)s)
),
exceptions AS (
    SELECT string_agg(
               concat_ws('|', e.org_id, e.usage_date, e.profile, e.instance_key, e.record_seq, e.reason, e.usage_hours),
               E'\n' ORDER BY e.org_id, e.usage_date, e.profile, e.instance_key, e.record_seq) AS text
    FROM billing.rating_exceptions AS e
    WHERE e.billing_period_start = %(period_start)s
),
waivers AS (
    SELECT string_agg(concat_ws('|', w.org_id, w.usage_date, w.profile, w.instance_key, w.reason, w.why),
                      E'\n' ORDER BY w.org_id, w.usage_date, w.profile, w.instance_key, w.reason) AS text
    FROM billing.exception_waivers AS w
    WHERE (w.usage_date >= %(period_start)s AND w.usage_date < %(period_end)s)
       OR EXISTS (SELECT 1 FROM billing.rating_exceptions AS e
                  WHERE e.billing_period_start = %(period_start)s AND e.org_id = w.org_id
                    AND e.usage_date = w.usage_date AND e.profile = w.profile
                    AND e.instance_key = w.instance_key AND e.reason = w.reason)
)
SELECT encode(sha256(convert_to(
           'items' || E'\n' || coalesce(items.text, '') || E'\nnames\n' || coalesce(names.text, '')
           || E'\nexceptions\n' || coalesce(exceptions.text, '') || E'\nwaivers\n' || coalesce(waivers.text, ''),
           'UTF8')), 'hex')
FROM items, names, exceptions, waivers;
