-- Rate (org, day) slices in one statement: price every usage record the run landed for the slices,
-- then insert one line item per (org, day, profile, instance_key, dimension) for the billable records
-- and one exception per record (or per record and dimension) that cannot be billed. Returns the
-- counts. The caller deletes the slices' old rows first, in the same transaction.
--
-- Parameters: org_ids text[] and usage_dates date[] (the slices, pairwise), run_id (whose landed
-- usage is rated), hours_tolerance (numeric: hours an instance may exceed its 24 h day by, rounding).
--
-- Price selection (docs: billing contract): a price row applies to a day when
--   effective_from <= day start < coalesce(effective_to, infinity)
--   and each of org_id / profile_type / profile is NULL (any) or equal to the usage's,
--   and label_key/label_value are NULL or name one of the record's billing labels (key in any case);
-- prices are chosen per dimension: the row's `dimension` (NULL = the instance itself, else a usage
-- parameter, any case). Per dimension, the applicable row with the highest specificity (8 label +
-- 4 org + 2 profile + 1 profile_type) wins, a tie at the top is ambiguous. One record can so make a
-- line item for the instance (instance_hour / gpu_hour) and one per priced dimension (dimension_hour,
-- quantity = the record's quantity of that dimension: raw_usage, or label_value x raw_usage).
-- Prices change only at 00:00 UTC (price_book_midnight_utc), so one price holds for a whole day.
-- Prices are looked up once per distinct (org, day, profile_type, profile, labels), not per usage
-- row: each key is expanded into the 8 ways a price row can match it (each part set or "any") and
-- every pattern is an exact probe of price_book_match_idx.
--
-- Reasons, in order of precedence. For the whole record (dimension ''): invalid_usage (the record's
-- numbers are unusable), usage_exceeds_window (the instance's hours that day exceed 24 h + tolerance:
-- impossible usage; quantities of dimensions such as GB-hours are not bounded), unpriced (no
-- dimension of it has a price). Per priced dimension: ambiguous_price, missing_gpu_count (a gpu_hour
-- price and no GPU count, or 0 GPUs), missing_dimension (a dimension_hour price and no usable
-- parameter of that name on the record); the record's other dimensions are still billed.
WITH slices AS MATERIALIZED (
    SELECT org_id, usage_date, billing.utc_midnight(usage_date) AS day_start
    FROM unnest(%(org_ids)s::text[], %(usage_dates)s::date[]) AS s (org_id, usage_date)
),
usage_keys AS (
    SELECT DISTINCT u.org_id, u.usage_date, s.day_start, u.profile_type, u.profile, u.labels
    FROM slices AS s
    JOIN billing.usage_records AS u
      ON u.org_id = s.org_id AND u.usage_date = s.usage_date AND u.run_id = %(run_id)s
),
patterns AS (
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
prices AS MATERIALIZED (
    -- per usage key and dimension: the winning row (winners = 1) or the rows tied for the win
    SELECT org_id, usage_date, profile_type, profile, labels, dim, count(*) AS winners,
           max(specificity) AS specificity, min(price_id) AS price_id, min(unit) AS unit,
           min(unit_price) AS unit_price, min(currency) AS currency, min(price_dimension) AS price_dimension,
           string_agg(price_id, ', ' ORDER BY price_id) AS tied
    FROM best
    WHERE place = 1
    GROUP BY org_id, usage_date, profile_type, profile, labels, dim
),
instance_hours AS MATERIALIZED (
    -- an instance's hours that day over all its valid records (stop/start makes several records)
    SELECT u.org_id, u.usage_date, u.profile, u.instance_key, sum(u.usage_hours) AS hours
    FROM slices AS s
    JOIN billing.usage_records AS u
      ON u.org_id = s.org_id AND u.usage_date = s.usage_date AND u.run_id = %(run_id)s
    WHERE u.invalid_reason IS NULL AND u.usage_hours >= 0
    GROUP BY u.org_id, u.usage_date, u.profile, u.instance_key
    HAVING sum(u.usage_hours) > 24 + %(hours_tolerance)s::numeric
),
-- NOT MATERIALIZED: both inserts re-read the slices' usage (a cheap index scan) instead of spilling a
-- million wide rows to a tuplestore; the classification is still written once.
records AS NOT MATERIALIZED (
    SELECT u.org_id, u.usage_date, u.window_start, u.window_end, u.organization, u.record_seq,
           u.profile_type, u.profile, u.instance, u.instance_id, u.instance_key, u.usage_hours, u.gpu_count,
           u.invalid_reason, u.dimensions, u.labels,
           CASE
               WHEN u.invalid_reason IS NOT NULL OR u.usage_hours IS NULL OR u.usage_hours < 0 THEN 'invalid_usage'
               WHEN ih.hours IS NOT NULL THEN 'usage_exceeds_window'
           END AS record_reason,
           CASE
               WHEN u.invalid_reason IS NOT NULL THEN u.invalid_reason
               WHEN u.usage_hours IS NULL THEN 'missing usage hours'
               WHEN u.usage_hours < 0 THEN 'negative usage hours: ' || u.usage_hours
               WHEN ih.hours IS NOT NULL THEN
                   'instance ' || quote_literal(u.instance_key) || ' has ' || ih.hours
                   || ' h on ' || u.usage_date || ', more than the 24 h of the day'
           END AS record_detail
    FROM slices AS s
    JOIN billing.usage_records AS u
      ON u.org_id = s.org_id AND u.usage_date = s.usage_date AND u.run_id = %(run_id)s
    LEFT JOIN instance_hours AS ih
      ON ih.org_id = u.org_id AND ih.usage_date = u.usage_date
     AND ih.profile = u.profile AND ih.instance_key = u.instance_key
),
priced AS NOT MATERIALIZED (
    -- one row per (usable record, priced dimension); one row with no price for an unusable record or
    -- a record no dimension of which has a price
    SELECT r.*, pr.dim, pr.winners, pr.specificity, pr.price_id, pr.unit, pr.unit_price, pr.currency, pr.tied,
           coalesce(pr.price_dimension, '') AS dimension,
           CASE WHEN pr.dim <> '' THEN r.dimensions -> pr.dim END AS dim_value
    FROM records AS r
    LEFT JOIN prices AS pr
      ON r.record_reason IS NULL
     AND pr.org_id = r.org_id AND pr.usage_date = r.usage_date
     AND pr.profile_type = r.profile_type AND pr.profile = r.profile AND pr.labels = r.labels
),
rated AS NOT MATERIALIZED (
    SELECT p.*,
           CASE
               WHEN p.record_reason IS NOT NULL THEN p.record_reason
               WHEN p.price_id IS NULL THEN 'unpriced'
               WHEN p.winners > 1 THEN 'ambiguous_price'
               WHEN p.unit = 'gpu_hour' AND (p.gpu_count IS NULL OR p.gpu_count <= 0) THEN 'missing_gpu_count'
               WHEN p.unit = 'dimension_hour' AND jsonb_typeof(p.dim_value) IS DISTINCT FROM 'string'
                   THEN 'missing_dimension'
           END AS reason,
           CASE
               WHEN p.record_reason IS NOT NULL THEN p.record_detail
               WHEN p.price_id IS NULL THEN
                   'no price book row applies to org_id ' || quote_literal(p.org_id)
                   || ', profile_type ' || quote_literal(p.profile_type) || ', profile ' || quote_literal(p.profile)
                   || CASE WHEN p.labels <> jsonb_build_object() THEN ', labels ' || p.labels::text ELSE '' END
                   || ' on ' || p.usage_date
               WHEN p.winners > 1 THEN
                   p.winners || ' price rows tie at specificity ' || p.specificity
                   || CASE WHEN p.dim <> '' THEN ' for dimension ' || quote_literal(p.dimension) ELSE '' END
                   || ': ' || p.tied
               WHEN p.unit = 'gpu_hour' AND p.gpu_count IS NULL THEN
                   'price ' || p.price_id || ' is per gpu_hour but the instance has no GPU count'
               WHEN p.unit = 'gpu_hour' AND p.gpu_count <= 0 THEN
                   'price ' || p.price_id || ' is per gpu_hour but the GPU count is ' || p.gpu_count
               WHEN p.unit = 'dimension_hour' AND p.dim_value IS NULL THEN
                   'price ' || p.price_id || ' is per dimension_hour of ' || quote_literal(p.dimension)
                   || ' but the usage record has no ' || quote_literal(p.dimension) || ' parameter'
               WHEN p.unit = 'dimension_hour' AND jsonb_typeof(p.dim_value) IS DISTINCT FROM 'string' THEN
                   'price ' || p.price_id || ' is per dimension_hour of ' || quote_literal(p.dimension)
                   || ' but the record''s ' || quote_literal(p.dimension)
                   || ' parameter has no usable usage (negative, not a number or too large)'
           END AS detail
    FROM priced AS p
),
billable AS (
    SELECT org_id, usage_date, window_start, window_end, organization, profile_type, profile, instance,
           instance_id, instance_key, usage_hours, gpu_count, labels, dimension, price_id, unit, unit_price,
           currency,
           CASE WHEN unit = 'gpu_hour' THEN usage_hours * gpu_count
                WHEN unit = 'dimension_hour' THEN (dim_value #>> ARRAY[]::text[])::numeric
                ELSE usage_hours END AS quantity
    FROM rated
    WHERE reason IS NULL
),
items AS (
    -- the target: billing.charge_line_items for days of open periods; a temporary table for days of closed
    -- periods, whose issued items stand and are corrected from it (rating/correct_days.sql)
    INSERT INTO {items} (
        org_id, usage_date, profile, instance_key, dimension, window_start, window_end, organization,
        profile_type, instance, instance_id, usage_hours, gpu_count, pricing_unit, pricing_quantity, unit_price,
        currency, minor_unit, amount, price_id, run_id, billing_period_start, labels
    )
    -- Several records with one instance_key (stop/start, seed-era records without ids) make one summed
    -- line item per dimension. Rounded once, to the currency's ISO 4217 minor unit; round() on numeric
    -- rounds half away from zero: half-up for the non-negative amounts billed here. An instance's
    -- records carry one label set (the extraction makes it so), so labels never split an item.
    SELECT b.org_id, b.usage_date, b.profile, b.instance_key, b.dimension, min(b.window_start),
           min(b.window_end), min(b.organization), b.profile_type, min(b.instance), min(b.instance_id),
           sum(b.usage_hours), CASE WHEN min(b.gpu_count) = max(b.gpu_count) THEN min(b.gpu_count) END,
           b.unit, sum(b.quantity), b.unit_price, b.currency, c.minor_unit,
           round(sum(b.quantity) * b.unit_price, c.minor_unit), b.price_id, %(run_id)s,
           billing.period_of(b.usage_date), b.labels
    FROM billable AS b
    -- a currency without a known minor unit fails the rating loudly (minor_unit is NOT NULL) rather
    -- than dropping its items; price_book_currency_fkey keeps such prices out of the book
    LEFT JOIN billing.currencies AS c ON c.currency = b.currency
    GROUP BY b.org_id, b.usage_date, b.profile, b.instance_key, b.dimension, b.profile_type, b.price_id, b.unit,
             b.unit_price, b.currency, c.minor_unit, b.labels
    RETURNING 1
),
exceptions AS (
    INSERT INTO billing.rating_exceptions (
        org_id, usage_date, record_seq, dimension, window_start, window_end, organization, profile_type,
        profile, instance, instance_id, instance_key, usage_hours, gpu_count, price_id, reason, detail, run_id
    )
    SELECT org_id, usage_date, record_seq, dimension, window_start, window_end, organization, profile_type,
           profile, instance, instance_id, instance_key, usage_hours, gpu_count,
           CASE WHEN winners = 1 THEN price_id END, reason, detail, %(run_id)s
    FROM rated
    WHERE reason IS NOT NULL
    RETURNING 1
)
SELECT (SELECT count(*) FROM items) AS line_items, (SELECT count(*) FROM exceptions) AS exceptions;
