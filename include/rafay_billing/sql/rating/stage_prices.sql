-- The prices of the slices' usage, resolved once per distinct (org, day, profile_type, profile, labels)
-- and dimension, into pg_temp.rating_prices (rating/create_stage.sql): the winning row (winners = 1) or
-- the rows tied for the win. A table of its own, analyzed before rating/rate_days.sql reads it, so the
-- planner knows it holds thousands of rows, not the one it would guess for this aggregate.
--
-- Parameters: org_ids text[] and usage_dates date[] (the slices, pairwise), run_id.
--
-- Price selection (docs: billing contract): a price row applies to a day when
--   effective_from <= day start < coalesce(effective_to, infinity)
--   and each of org_id / profile_type / profile is NULL (any) or equal to the usage's,
--   and label_key/label_value are NULL or name one of the record's billing labels (key in any case);
-- prices are chosen per dimension: the row's `dimension` (NULL = the instance itself, else a usage
-- parameter, any case). Per dimension, the applicable row with the highest specificity (8 label +
-- 4 org + 2 profile + 1 profile_type) wins, a tie at the top is ambiguous.
-- Prices change only at 00:00 UTC (price_book_midnight_utc), so one price holds for a whole day.
-- Each key is expanded into the 8 ways a price row can match it (each part set or "any") and every
-- pattern is an exact probe of price_book_match_idx.
--
-- Issue 21: every key also gets
--   * item_labels: the labels its line items carry. A label parameter with a numeric value (landed in
--     both `labels` and `dimensions`) is a quantity, not an identity, unless some price row names it
--     as a label_key: then it is an identity label whatever its value looks like (rule 6). Prices
--     match the landed labels: a label a price row names is never dropped, so that is the same match.
--   * a row for the instance itself (dim '') with no price (price_id NULL) when only dimensions are
--     priced: instance hours need an instance price, else `unpriced` (rule 8);
--   * gpu_conflict on each of its rows: the winning instance price is per GPU (gpu_hour) and a `GPU`
--     dimension price applies as well, which would price the same GPU-hours twice (rule 7).
INSERT INTO pg_temp.rating_prices (
    org_id, usage_date, profile_type, profile, labels, dim, winners, specificity, price_id, unit, unit_price,
    currency, price_dimension, tied, minor_unit, item_labels, gpu_conflict
)
WITH slices AS MATERIALIZED (
    SELECT org_id, usage_date, billing.utc_midnight(usage_date) AS day_start
    FROM unnest(%(org_ids)s::text[], %(usage_dates)s::date[]) AS s (org_id, usage_date)
),
usage_keys AS (
    -- the distinct price keys of each slice; every read of the slices' usage in this statement is a
    -- LATERAL subquery with OFFSET 0, a fence that makes it one index scan per slice (about a thousand
    -- rows each) whatever the planner guesses for a join of the slices with the whole table
    SELECT s.org_id, s.usage_date, s.day_start, k.profile_type, k.profile, k.labels
    FROM slices AS s
    CROSS JOIN LATERAL (
        SELECT DISTINCT u.profile_type, u.profile, u.labels
        FROM billing.usage_records AS u
        WHERE u.org_id = s.org_id AND u.usage_date = s.usage_date AND u.run_id = %(run_id)s
        OFFSET 0
    ) AS k
),
-- MATERIALIZED: written once for all slices, then joined with the price book in one join; inlined, the
-- planner ran the join inside the loop over slices and read the whole price book once per slice
-- (1,000 slices x 10,000 rows at the benchmark's size; 0.59 -> 0.26 CPU-s at 200 slices)
patterns AS MATERIALIZED (
    SELECT k.org_id, k.usage_date, k.day_start, k.profile_type, k.profile, k.labels,
           CASE WHEN m.by_org THEN k.org_id ELSE '' END AS match_org,
           CASE WHEN m.by_profile THEN k.profile ELSE '' END AS match_profile,
           CASE WHEN m.by_type THEN k.profile_type ELSE '' END AS match_type
    FROM usage_keys AS k
    CROSS JOIN (VALUES (false, false, false), (false, false, true), (false, true, false), (false, true, true),
                       (true, false, false), (true, false, true), (true, true, false), (true, true, true))
               AS m (by_org, by_profile, by_type)
    -- a price row cannot name '' (blank means any), so an empty usage value only matches "any"
    WHERE NOT (m.by_org AND k.org_id = '')
      AND NOT (m.by_profile AND k.profile = '')
      AND NOT (m.by_type AND k.profile_type = '')
),
candidates AS (
    SELECT pt.org_id, pt.usage_date, pt.profile_type, pt.profile, pt.labels,
           lower(coalesce(p.dimension, '')) AS dim, p.dimension AS price_dimension,
           p.price_id, p.unit, p.unit_price, p.currency,
           8 * (p.label_key IS NOT NULL)::int + 4 * (p.org_id IS NOT NULL)::int
             + 2 * (p.profile IS NOT NULL)::int + (p.profile_type IS NOT NULL)::int AS specificity
    FROM patterns AS pt
    JOIN billing.price_book AS p
      ON coalesce(p.org_id, '') = pt.match_org
     AND coalesce(p.profile, '') = pt.match_profile
     AND coalesce(p.profile_type, '') = pt.match_type
     AND p.effective_from <= pt.day_start
     AND (p.effective_to IS NULL OR pt.day_start < p.effective_to)
    WHERE p.label_key IS NULL OR EXISTS (
        SELECT 1 FROM jsonb_each_text(pt.labels) AS l (key, value)
        WHERE lower(l.key) = lower(p.label_key) AND l.value = p.label_value
    )
),
best AS (
    SELECT c.*, rank() OVER (PARTITION BY c.org_id, c.usage_date, c.profile_type, c.profile, c.labels, c.dim
                             ORDER BY c.specificity DESC) AS place
    FROM candidates AS c
),
won AS (
    SELECT org_id, usage_date, profile_type, profile, labels, dim, count(*) AS winners,
           max(specificity) AS specificity, min(price_id) AS price_id, min(unit) AS unit,
           min(unit_price) AS unit_price, min(currency) AS currency, min(price_dimension) AS price_dimension,
           string_agg(price_id, ', ' ORDER BY price_id) AS tied,
           -- a currency without a known minor unit fails the rating loudly (minor_unit is NOT NULL in
           -- the stage for a priced row) rather than dropping its items; price_book_currency_fkey keeps
           -- such prices out
           (SELECT c.minor_unit FROM billing.currencies AS c WHERE c.currency = min(best.currency)) AS minor_unit
    FROM best
    WHERE place = 1
    GROUP BY org_id, usage_date, profile_type, profile, labels, dim
),
keyed AS (
    SELECT w.*,
           bool_or(w.dim = '') OVER k AS instance_priced,
           max(CASE WHEN w.dim = '' AND w.winners = 1 AND w.unit IN ('gpu_hour', 'gpu_month') THEN w.price_id END)
               OVER k AS gpu_instance_price,
           max(CASE WHEN w.dim = 'gpu' THEN w.tied END) OVER k AS gpu_dimension_prices,
           row_number() OVER k AS nth
    FROM won AS w
    WINDOW k AS (PARTITION BY w.org_id, w.usage_date, w.profile_type, w.profile, w.labels)
),
label_keys AS MATERIALIZED (
    -- rule 6: the parameter names some price row matches as a label (any row, any time)
    SELECT coalesce(array_agg(DISTINCT lower(p.label_key)), '{}') AS names
    FROM billing.price_book AS p WHERE p.label_key IS NOT NULL
),
resolved AS (
    SELECT k.*,
           CASE WHEN k.labels = '{}'::jsonb THEN k.labels ELSE (
               SELECT coalesce(jsonb_object_agg(l.key, l.value), '{}'::jsonb)
               FROM jsonb_each_text(k.labels) AS l (key, value)
               WHERE lower(l.key) = ANY (lk.names)
                  OR l.value !~ '^\s*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$'
           ) END AS item_labels
    FROM keyed AS k CROSS JOIN label_keys AS lk
)
SELECT org_id, usage_date, profile_type, profile, labels, dim, winners, specificity, price_id, unit, unit_price,
       currency, price_dimension, tied, minor_unit, item_labels,
       -- on every row of the key: none of its dimensions is billed either (rate_days.sql)
       CASE WHEN gpu_instance_price IS NOT NULL AND gpu_dimension_prices IS NOT NULL THEN
           'price ' || gpu_instance_price || ' (per GPU) and GPU dimension price ' || gpu_dimension_prices
           || ' both apply: the same GPU-hours would be billed twice; keep one of them for this match'
       END
FROM resolved
UNION ALL
SELECT org_id, usage_date, profile_type, profile, labels, '', 0, 0, NULL, NULL, NULL, NULL, NULL, '', NULL,
       item_labels, NULL
FROM resolved
WHERE NOT instance_priced AND nth = 1;
