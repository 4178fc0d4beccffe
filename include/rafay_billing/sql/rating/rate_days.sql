-- Rate (org, day) slices in one statement: every usage record the run landed for the slices, priced
-- with pg_temp.rating_prices (rating/stage_prices.sql), makes one row in {items} per (org, day,
-- profile_type, profile, instance_key, dimension) for the billable records, and one billing.rating_exceptions row
-- per record (or per record and dimension) that cannot be billed. {items} is billing.charge_line_items
-- for days of open periods that hold no items yet (the nightly case), else this transaction's stage
-- pg_temp.rated_days, which is then applied to the ledger (rating/delete_changed_items.sql,
-- insert_rated_items.sql) or, for days of closed periods, compared with what was issued
-- (rating/correct_days.sql). Returns the counts. The caller deletes the slices' old exceptions first,
-- in the same transaction.
--
-- Parameters: org_ids text[] and usage_dates date[] (the slices, pairwise), run_id (whose landed
-- usage is rated), hours_tolerance (numeric: hours an instance may exceed its 24 h day by, rounding;
-- also what a record's hours may exceed its [start_time, end_time) by), safe_times (boolean: read record
-- times through billing.record_time, which never fails, instead of a plain cast).
--
-- A month-priced instance (instance_month / gpu_month, issue 22 rule 3) makes its day's item with the
-- month price as unit_price, pricing_quantity = the units billed monthly that day (1 instance, or its
-- GPU count for gpu_month; 0 on a day without usage) and amount 0 (in the currency's minor unit, 0.00):
-- the close bills the month (MRC).
-- One record can make a line item for the instance (instance_hour / gpu_hour) and one per priced
-- dimension (dimension_hour, quantity = the record's quantity of that dimension: raw_usage, or
-- label_value x raw_usage).
--
-- Reasons, in order of precedence. For the whole record (dimension ''): invalid_usage (the record's
-- numbers are unusable), usage_exceeds_window (the record's, or the instance's, hours that day exceed
-- 24 h + tolerance, checked before usage_outside_day:
-- impossible usage; quantities of dimensions such as GB-hours are not bounded), unpriced (no
-- dimension of it has a price). Per priced dimension: ambiguous_price, missing_gpu_count (a gpu_hour
-- or gpu_month price and no GPU count, or 0 GPUs), missing_dimension (a dimension_hour price and no usable
-- parameter of that name on the record); the record's other dimensions are still billed.
--
-- Why it is shaped so (a million records in a day, measured in bench/bench_rating.py): the slices'
-- usage is read once, by one index scan per slice behind an OFFSET 0 fence, whatever the planner
-- guesses for a join of the slices with the whole table; the per-instance sums are window aggregates
-- within a slice; the price join happens once above the loop; the classified rows are materialized
-- once for both inserts; and an instance with a single record (nearly all) makes its line item
-- without a sort or an aggregate.
WITH slices AS MATERIALIZED (
    -- day_end once per slice, not three times per record (timestamptz + interval is a calendar computation)
    SELECT org_id, usage_date, billing.utc_midnight(usage_date) AS day_start,
           billing.utc_midnight(usage_date) + interval '1 day' AS day_end
    FROM unnest(%(org_ids)s::text[], %(usage_dates)s::date[]) AS s (org_id, usage_date)
),
records AS NOT MATERIALIZED (
    SELECT u.org_id, u.usage_date, u.window_start, u.window_end, u.organization, u.record_seq,
           u.profile_type, u.profile, u.instance, u.instance_id, u.instance_key, u.usage_hours, u.gpu_count,
           u.invalid_reason, u.dimensions, u.labels, u.instance_records, u.inside_s, u.length_s,
           CASE
               WHEN u.invalid_reason IS NOT NULL OR u.usage_hours IS NULL OR u.usage_hours < 0 THEN 'invalid_usage'
               -- the contract's rule first: more hours than the day has is impossible usage, whatever the times
               WHEN u.usage_hours > 24 + %(hours_tolerance)s::numeric THEN 'usage_exceeds_window'
               WHEN u.outside_detail IS NOT NULL THEN 'usage_outside_day'
               WHEN u.instance_hours > 24 + %(hours_tolerance)s::numeric THEN 'usage_exceeds_window'
           END AS record_reason,
           CASE
               WHEN u.invalid_reason IS NOT NULL THEN u.invalid_reason
               WHEN u.usage_hours IS NULL THEN 'missing usage hours'
               WHEN u.usage_hours < 0 THEN 'negative usage hours: ' || u.usage_hours
               WHEN u.usage_hours > 24 + %(hours_tolerance)s::numeric THEN
                   'instance ' || quote_literal(u.instance_key) || ' has ' || u.usage_hours
                   || ' h on ' || u.usage_date || ', more than the 24 h of the day'
               WHEN u.outside_detail IS NOT NULL THEN u.outside_detail
               WHEN u.instance_hours > 24 + %(hours_tolerance)s::numeric THEN
                   'instance ' || quote_literal(u.instance_key) || ' has ' || u.instance_hours
                   || ' h on ' || u.usage_date || ', more than the 24 h of the day'
           END AS record_detail
    FROM slices AS s
    CROSS JOIN LATERAL (
        -- instance_hours: the instance's hours that day over all its valid records (stop/start makes
        -- several records), summed within the slice
        SELECT t.*,
               sum(t.usage_hours) FILTER (WHERE t.invalid_reason IS NULL AND t.usage_hours >= 0
                                            AND t.outside_detail IS NULL) OVER instance AS instance_hours,
               count(*) OVER instance AS instance_records
        FROM (
            -- Record times (issue 21, rule 9). A record with both times is billed on the day for the
            -- share of its hours that its [start, end) has inside the day (rounded half-up to 6 places;
            -- inside_s/length_s, NULL when all of it is inside); more hours than its interval is long
            -- (+ tolerance), or an interval that does not meet the day, is usage_outside_day. A record
            -- without times is billed whole.
            SELECT c.org_id, c.usage_date, c.window_start, c.window_end, c.organization, c.record_seq,
                   c.profile_type, c.profile, c.instance, c.instance_id, c.instance_key, c.gpu_count,
                   c.invalid_reason, c.dimensions, c.labels,
                   CASE WHEN c.straddles THEN round(c.usage_hours * c.inside_s / c.length_s, 6)
                        ELSE c.usage_hours END AS usage_hours,
                   CASE WHEN c.straddles THEN c.inside_s END AS inside_s,
                   CASE WHEN c.straddles THEN c.length_s END AS length_s,
                   c.outside_detail
            FROM (
                SELECT b.*,
                       b.outside_detail IS NULL AND b.length_s > 0
                           AND (b.ts < s.day_start OR b.te > s.day_end) AS straddles
                FROM (
                    SELECT a.*,
                           CASE
                               WHEN a.ts IS NULL OR a.te IS NULL OR a.invalid_reason IS NOT NULL
                                    OR a.usage_hours IS NULL OR a.usage_hours < 0 THEN NULL
                               WHEN a.te < a.ts OR a.ts >= s.day_end OR a.te < s.day_start
                                    OR (a.te = s.day_start AND a.ts < a.te) THEN
                                   'record [' || a.record_start || ', ' || a.record_end || ') does not meet '
                                   || a.usage_date || ' (UTC)'
                               WHEN a.usage_hours > a.length_s / 3600 + %(hours_tolerance)s::numeric THEN
                                   'record has ' || a.usage_hours || ' h but its [' || a.record_start || ', '
                                   || a.record_end || ') is ' || round(a.length_s / 3600, 6) || ' h long'
                           END AS outside_detail
                    FROM (
                        SELECT z.*, extract(epoch FROM z.te - z.ts) AS length_s,
                               extract(epoch FROM least(z.te, s.day_end)
                                                  - greatest(z.ts, s.day_start)) AS inside_s
                        FROM (
                            SELECT r.org_id, r.usage_date, r.window_start, r.window_end, r.organization,
                                   r.record_seq, r.profile_type, r.profile, r.instance, r.instance_id,
                                   r.instance_key, r.usage_hours, r.gpu_count, r.invalid_reason, r.dimensions,
                                   r.labels, r.record_start, r.record_end,
                                   -- a time the cast cannot read fails the statement; rating then runs
                                   -- again with safe_times, which reads only what it validated first
                                   CASE WHEN %(safe_times)s THEN billing.record_time(r.record_start)
                                        ELSE r.record_start::timestamptz END AS ts,
                                   CASE WHEN %(safe_times)s THEN billing.record_time(r.record_end)
                                        ELSE r.record_end::timestamptz END AS te
                            FROM billing.usage_records AS r
                            WHERE r.org_id = s.org_id AND r.usage_date = s.usage_date AND r.run_id = %(run_id)s
                            OFFSET 0
                        ) AS z
                        -- fences: without them the planner flattens a, b and c into one projection and
                        -- evaluates length_s, outside_detail and straddles again at every reference
                        -- (straddles three times, each with outside_detail and its NUMERIC division)
                        OFFSET 0
                    ) AS a
                    OFFSET 0
                ) AS b
            ) AS c
            OFFSET 0
        ) AS t
        WINDOW instance AS (PARTITION BY t.profile_type, t.profile, t.instance_key)
        OFFSET 0
    ) AS u
    OFFSET 0  -- and the price join happens once, above the slices' loop, not once per slice
),
priced AS NOT MATERIALIZED (
    -- one row per (usable record, priced dimension); one row with no price for an unusable record or
    -- a record no dimension of which has a price
    SELECT r.*, pr.dim, pr.winners, pr.specificity, pr.price_id, pr.unit, pr.unit_price, pr.currency, pr.tied,
           pr.minor_unit, pr.item_labels, pr.gpu_conflict,
           coalesce(pr.price_dimension, '') AS dimension,
           CASE WHEN pr.dim <> '' THEN r.dimensions -> pr.dim END AS dim_value
    FROM records AS r
    LEFT JOIN pg_temp.rating_prices AS pr
      ON r.record_reason IS NULL
     AND pr.org_id = r.org_id AND pr.usage_date = r.usage_date
     AND pr.profile_type = r.profile_type AND pr.profile = r.profile AND pr.labels = r.labels
     -- GPU-hours priced twice (rule 7): only the instance row, an exception; none of its dimensions
     AND (pr.dim = '' OR pr.gpu_conflict IS NULL)
),
rated AS MATERIALIZED (
    -- only what the two inserts read: this is written once and read twice
    SELECT p.org_id, p.usage_date, p.window_start, p.window_end, p.organization, p.record_seq, p.profile_type,
           p.profile, p.instance, p.instance_id, p.instance_key, p.usage_hours, p.gpu_count, p.item_labels AS labels,
           p.instance_records, p.inside_s, p.length_s, p.winners, p.price_id, p.unit, p.unit_price, p.currency, p.minor_unit, p.dimension,
           p.dim_value, p.gpu_conflict,
           CASE
               WHEN p.record_reason IS NOT NULL THEN p.record_reason
               WHEN p.gpu_conflict IS NOT NULL THEN 'ambiguous_price'
               WHEN p.price_id IS NULL THEN 'unpriced'
               WHEN p.winners > 1 THEN 'ambiguous_price'
               WHEN p.unit IN ('gpu_hour', 'gpu_month') AND (p.gpu_count IS NULL OR p.gpu_count <= 0)
                   THEN 'missing_gpu_count'
               WHEN p.unit = 'dimension_hour' AND jsonb_typeof(p.dim_value) IS DISTINCT FROM 'string'
                   THEN 'missing_dimension'
           END AS reason,
           CASE
               WHEN p.record_reason IS NOT NULL THEN p.record_detail
               WHEN p.gpu_conflict IS NOT NULL THEN p.gpu_conflict
               WHEN p.price_id IS NULL THEN
                   CASE WHEN p.winners = 0 THEN 'no instance price (instance_hour, gpu_hour, instance_month or gpu_month; unit_price 0 = free) '
                        ELSE 'no price book row ' END
                   || 'applies to org_id ' || quote_literal(p.org_id)
                   || ', profile_type ' || quote_literal(p.profile_type) || ', profile ' || quote_literal(p.profile)
                   || CASE WHEN p.labels <> jsonb_build_object() THEN ', labels ' || p.labels::text ELSE '' END
                   || ' on ' || p.usage_date
                   || CASE WHEN p.winners = 0 THEN ': its dimension prices do not price the instance''s hours' ELSE '' END
               WHEN p.winners > 1 THEN
                   p.winners || ' price rows tie at specificity ' || p.specificity
                   || CASE WHEN p.dim <> '' THEN ' for dimension ' || quote_literal(p.dimension) ELSE '' END
                   || ': ' || p.tied
               WHEN p.unit IN ('gpu_hour', 'gpu_month') AND p.gpu_count IS NULL THEN
                   'price ' || p.price_id || ' is per ' || p.unit || ' but the instance has no GPU count'
               WHEN p.unit IN ('gpu_hour', 'gpu_month') AND p.gpu_count <= 0 THEN
                   'price ' || p.price_id || ' is per ' || p.unit || ' but the GPU count is ' || p.gpu_count
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
-- NOT MATERIALIZED: read from `rated` by both branches of the insert, not copied once more into a work
-- table of its own (a million wide rows: 6 per cent of a first rating's CPU, bench/bench_rating.py)
billable AS NOT MATERIALIZED (
    SELECT org_id, usage_date, window_start, window_end, organization, profile_type, profile, instance,
           instance_id, instance_key, usage_hours, gpu_count, labels, dimension, price_id, unit, unit_price,
           currency, minor_unit, instance_records, inside_s, length_s,
           CASE WHEN unit = 'gpu_hour' THEN usage_hours * gpu_count
                -- MRC (issue 22, rule 3): the units billed monthly that day, 1 instance or its GPUs, when used
                WHEN unit = 'instance_month' THEN CASE WHEN usage_hours > 0 THEN 1 ELSE 0 END
                WHEN unit = 'gpu_month' THEN CASE WHEN usage_hours > 0 THEN gpu_count ELSE 0 END
                WHEN unit = 'dimension_hour' AND inside_s IS NOT NULL
                    THEN round((dim_value #>> ARRAY[]::text[])::numeric * inside_s / length_s, 6)
                WHEN unit = 'dimension_hour' THEN (dim_value #>> ARRAY[]::text[])::numeric
                ELSE usage_hours END AS quantity
    FROM rated
    WHERE reason IS NULL
),
items AS (
    INSERT INTO {items} (
        org_id, usage_date, profile, instance_key, dimension, window_start, window_end, organization,
        profile_type, instance, instance_id, usage_hours, gpu_count, pricing_unit, pricing_quantity, unit_price,
        currency, minor_unit, amount, price_id, run_id, billing_period_start, labels
    )
    -- Several records with one instance_key (stop/start, seed-era records without ids) make one summed
    -- line item per dimension. Rounded once, to the currency's ISO 4217 minor unit; round() on numeric
    -- rounds half away from zero: half-up for the non-negative amounts billed here. An instance's
    -- records carry one label set (the extraction makes it so), so labels never split an item.
    SELECT b.org_id, b.usage_date, b.profile, b.instance_key, b.dimension, b.window_start, b.window_end,
           b.organization, b.profile_type, b.instance, b.instance_id, b.usage_hours, b.gpu_count, b.unit,
           b.quantity, b.unit_price, b.currency, b.minor_unit,
           CASE WHEN b.unit IN ('instance_month', 'gpu_month') THEN round(0::numeric, b.minor_unit)
                ELSE round(b.quantity * b.unit_price, b.minor_unit) END,
           b.price_id, %(run_id)s, billing.period_of(b.usage_date), b.labels
    FROM billable AS b
    WHERE b.instance_records = 1
    UNION ALL
    SELECT b.org_id, b.usage_date, b.profile, b.instance_key, b.dimension, min(b.window_start),
           min(b.window_end), min(b.organization), b.profile_type, min(b.instance), min(b.instance_id),
           sum(b.usage_hours), CASE WHEN min(b.gpu_count) = max(b.gpu_count) THEN min(b.gpu_count) END,
           -- a month-priced instance counts once a day however many records it has: 1, or its largest
           -- GPU count (issue 22, rule 3), and bills 0 that day
           b.unit,
           CASE b.unit WHEN 'instance_month' THEN CASE WHEN sum(b.usage_hours) > 0 THEN 1 ELSE 0 END
                       WHEN 'gpu_month' THEN coalesce(max(b.gpu_count) FILTER (WHERE b.usage_hours > 0), 0)
                       ELSE sum(b.quantity) END,
           b.unit_price, b.currency, b.minor_unit,
           CASE WHEN b.unit IN ('instance_month', 'gpu_month') THEN round(0::numeric, b.minor_unit)
                ELSE round(sum(b.quantity) * b.unit_price, b.minor_unit) END, b.price_id, %(run_id)s,
           billing.period_of(b.usage_date), b.labels
    FROM billable AS b
    WHERE b.instance_records > 1
    GROUP BY b.org_id, b.usage_date, b.profile, b.instance_key, b.dimension, b.profile_type, b.price_id, b.unit,
             b.unit_price, b.currency, b.minor_unit, b.labels
    RETURNING 1
),
exceptions AS (
    INSERT INTO billing.rating_exceptions (
        org_id, usage_date, record_seq, dimension, window_start, window_end, organization, profile_type,
        profile, instance, instance_id, instance_key, usage_hours, gpu_count, price_id, reason, detail, run_id
    )
    SELECT org_id, usage_date, record_seq, dimension, window_start, window_end, organization, profile_type,
           profile, instance, instance_id, instance_key, usage_hours, gpu_count,
           CASE WHEN winners = 1 AND gpu_conflict IS NULL THEN price_id END, reason,
           -- bounded (rule 17): the full values stay in the landed usage and its raw page
           CASE WHEN length(detail) > 1024 THEN left(detail, 1023) || '…' ELSE detail END, %(run_id)s
    FROM rated
    WHERE reason IS NOT NULL
    RETURNING 1
)
SELECT (SELECT count(*) FROM items) AS line_items, (SELECT count(*) FROM exceptions) AS exceptions;
