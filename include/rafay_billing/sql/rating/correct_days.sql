-- Corrections of days of closed periods. For each (org, day) whose fresh rating (pg_temp.rated_days)
-- differs from what was issued for it (its items in closed periods, summed per instance and price),
-- write into the earliest open period: the issued net reversed (entry 'reversal', negative) and the
-- fresh items (entry 'charge'), all charge_class 'correction' with the day's next correction_seq.
-- Their sum is new - old per currency. A day whose rating is unchanged writes nothing, so repeating a
-- correction never doubles it. Returns one row per corrected day.
WITH slices AS MATERIALIZED (
    SELECT org_id, usage_date FROM unnest(%(org_ids)s::text[], %(usage_dates)s::date[]) AS s (org_id, usage_date)
),
issued AS MATERIALIZED (
    SELECT li.org_id, li.usage_date, li.profile_type, li.profile, li.instance_key, li.dimension, li.covered_by,
           li.price_id, li.pricing_unit, li.unit_price, li.list_unit_price, li.currency, li.minor_unit,
           min(li.organization) AS organization, min(li.instance) AS instance,
           min(li.instance_id) AS instance_id, min(li.window_start) AS window_start, min(li.window_end) AS window_end,
           sum(li.usage_hours) AS usage_hours, sum(li.pricing_quantity) AS quantity, sum(li.amount) AS amount,
           min(li.run_id) FILTER (WHERE li.entry = 'charge') AS run_id,
           (array_agg(li.labels ORDER BY li.correction_seq DESC))[1] AS labels
    FROM slices AS s
    JOIN billing.charge_line_items AS li ON li.org_id = s.org_id AND li.usage_date = s.usage_date
     AND li.charge_level = 'day'
    GROUP BY li.org_id, li.usage_date, li.profile_type, li.profile, li.instance_key, li.dimension, li.covered_by,
             li.price_id, li.pricing_unit, li.unit_price, li.list_unit_price, li.currency, li.minor_unit
    HAVING sum(li.pricing_quantity) <> 0 OR sum(li.amount) <> 0
),
fresh AS MATERIALIZED (
    SELECT r.* FROM slices AS s
    JOIN pg_temp.rated_days AS r ON r.org_id = s.org_id AND r.usage_date = s.usage_date
),
-- what a day bills, as comparable rows: the same set on both sides means nothing to correct
issued_set AS (
    SELECT org_id, usage_date, profile_type, profile, instance_key, dimension, covered_by, price_id, unit_price,
           list_unit_price, currency, quantity, amount
    FROM issued
),
fresh_set AS (
    SELECT org_id, usage_date, profile_type, profile, instance_key, dimension, covered_by, price_id, unit_price,
           list_unit_price, currency, pricing_quantity AS quantity, amount
    FROM fresh
    WHERE pricing_quantity <> 0 OR amount <> 0  -- as issued: zero items bill nothing (rule 5)
),
changed AS MATERIALIZED (
    SELECT DISTINCT org_id, usage_date FROM (
        (SELECT * FROM issued_set EXCEPT SELECT * FROM fresh_set)
        UNION ALL
        (SELECT * FROM fresh_set EXCEPT SELECT * FROM issued_set)
    ) AS d
),
numbered AS MATERIALIZED (
    SELECT c.org_id, c.usage_date, billing.earliest_open_period(c.usage_date) AS period,
           1 + coalesce((SELECT max(li.correction_seq) FROM billing.charge_line_items AS li
                         WHERE li.org_id = c.org_id AND li.usage_date = c.usage_date), 0) AS seq
    FROM changed AS c
),
reversals AS (
    INSERT INTO billing.charge_line_items (
        org_id, usage_date, profile, instance_key, dimension, charge_class, correction_seq, entry,
        window_start, window_end, organization, profile_type, instance, instance_id, usage_hours, gpu_count,
        pricing_unit, pricing_quantity, unit_price, currency, minor_unit, amount, price_id, run_id,
        billing_period_start, reverses_run_id, labels, covered_by, contract_id, list_unit_price
    )
    SELECT i.org_id, i.usage_date, i.profile, i.instance_key, i.dimension, 'correction', n.seq, 'reversal',
           i.window_start, i.window_end, i.organization, i.profile_type, i.instance, i.instance_id,
           -i.usage_hours, NULL, i.pricing_unit, -i.quantity, i.unit_price, i.currency, i.minor_unit, -i.amount,
           i.price_id, %(run_id)s, n.period, coalesce(i.run_id, 'correction'), i.labels, i.covered_by,
           nullif(i.covered_by, ''), i.list_unit_price
    FROM issued AS i JOIN numbered AS n USING (org_id, usage_date)
    RETURNING org_id, usage_date, currency, amount
),
charges AS (
    INSERT INTO billing.charge_line_items (
        org_id, usage_date, profile, instance_key, dimension, charge_class, correction_seq, entry,
        window_start, window_end, organization, profile_type, instance, instance_id, usage_hours, gpu_count,
        pricing_unit, pricing_quantity, unit_price, currency, minor_unit, amount, price_id, run_id,
        billing_period_start, labels, covered_by, contract_id, list_unit_price
    )
    SELECT f.org_id, f.usage_date, f.profile, f.instance_key, f.dimension, 'correction', n.seq, 'charge',
           f.window_start, f.window_end, f.organization, f.profile_type, f.instance, f.instance_id,
           f.usage_hours, f.gpu_count, f.pricing_unit, f.pricing_quantity, f.unit_price, f.currency, f.minor_unit,
           f.amount, f.price_id, f.run_id, n.period, f.labels, f.covered_by, f.contract_id, f.list_unit_price
    FROM fresh AS f JOIN numbered AS n USING (org_id, usage_date)
    RETURNING org_id, usage_date, currency, amount
),
moves AS (
    SELECT org_id, usage_date, currency, amount FROM reversals
    UNION ALL
    SELECT org_id, usage_date, currency, amount FROM charges
)
SELECT n.org_id, n.usage_date, n.period, n.seq,
       (SELECT jsonb_object_agg(t.currency, t.delta) FROM (
            SELECT m.currency::text AS currency, sum(m.amount)::text AS delta FROM moves AS m
            WHERE m.org_id = n.org_id AND m.usage_date = n.usage_date GROUP BY m.currency
        ) AS t) AS delta
FROM numbered AS n
ORDER BY n.org_id, n.usage_date;
