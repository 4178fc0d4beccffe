-- Which closed days' fresh rating (pg_temp.rated_days) differs from what the ledger holds for them now
-- (issued items plus pending corrections, summed per instance and price): only those are corrected
-- again, so a repeated correction changes nothing and logs nothing. An item of quantity and amount 0
-- bills nothing: it is left out on both sides (the held side's net of a reversed item is 0 too), so a
-- day with zero items that is rated again unchanged is no change (issue 21, rule 5).
WITH slices AS MATERIALIZED (
    SELECT org_id, usage_date FROM unnest(%(org_ids)s::text[], %(usage_dates)s::date[]) AS s (org_id, usage_date)
),
held AS (
    SELECT li.org_id, li.usage_date, li.profile_type, li.profile, li.instance_key, li.dimension, li.covered_by,
           li.price_id, li.unit_price, li.list_unit_price, li.currency, sum(li.pricing_quantity) AS quantity, sum(li.amount) AS amount
    FROM slices AS s
    JOIN billing.charge_line_items AS li ON li.org_id = s.org_id AND li.usage_date = s.usage_date
     AND li.charge_level = 'day'
    GROUP BY li.org_id, li.usage_date, li.profile_type, li.profile, li.instance_key, li.dimension, li.covered_by,
             li.price_id, li.unit_price, li.list_unit_price, li.currency
    HAVING sum(li.pricing_quantity) <> 0 OR sum(li.amount) <> 0
),
fresh AS (
    SELECT r.org_id, r.usage_date, r.profile_type, r.profile, r.instance_key, r.dimension, r.covered_by, r.price_id,
           r.unit_price, r.list_unit_price, r.currency,
           r.pricing_quantity AS quantity, r.amount
    FROM slices AS s JOIN pg_temp.rated_days AS r ON r.org_id = s.org_id AND r.usage_date = s.usage_date
    WHERE r.pricing_quantity <> 0 OR r.amount <> 0
)
SELECT DISTINCT org_id, usage_date FROM (
    (SELECT * FROM held EXCEPT SELECT * FROM fresh)
    UNION ALL
    (SELECT * FROM fresh EXCEPT SELECT * FROM held)
) AS d
ORDER BY org_id, usage_date;
