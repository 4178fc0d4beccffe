-- Rate one window in one statement: price every landed usage record of the window, then insert one
-- line item per (org, profile, instance_key) for the billable records and one exception per record
-- that cannot be billed. Returns the counts. The caller deletes the window's old rows first, in the
-- same transaction.
--
-- Price selection (docs: billing contract): a price row applies when
--   effective_from <= window_start < coalesce(effective_to, infinity)
--   and each of org_id / profile_type / profile is NULL (any) or equal to the usage's;
-- the applicable row with the highest specificity (4 org + 2 profile + 1 profile_type) wins, a tie at
-- the top is ambiguous. Prices are looked up once per distinct (org, profile_type, profile) of the
-- window, not per usage row: each key is expanded into the 8 ways a price row can match it (each part
-- set or "any") and every pattern is an exact probe of price_book_match_idx.
WITH usage_keys AS (
    SELECT DISTINCT org_id, profile_type, profile
    FROM billing.usage_records
    WHERE window_start = %(window_start)s AND window_end = %(window_end)s
),
patterns AS (
    SELECT k.org_id, k.profile_type, k.profile,
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
    SELECT pt.org_id, pt.profile_type, pt.profile, p.price_id, p.unit, p.unit_price, p.currency,
           4 * (p.org_id IS NOT NULL)::int + 2 * (p.profile IS NOT NULL)::int
             + (p.profile_type IS NOT NULL)::int AS specificity
    FROM patterns AS pt
    JOIN billing.price_book AS p
      ON coalesce(p.org_id, '') = pt.match_org
     AND coalesce(p.profile, '') = pt.match_profile
     AND coalesce(p.profile_type, '') = pt.match_type
     AND p.effective_from <= %(window_start)s
     AND (p.effective_to IS NULL OR %(window_start)s < p.effective_to)
),
best AS (
    SELECT c.*, rank() OVER (PARTITION BY c.org_id, c.profile_type, c.profile ORDER BY c.specificity DESC) AS place
    FROM candidates AS c
),
prices AS MATERIALIZED (
    -- per usage key: the winning row (winners = 1) or the rows tied for the win (winners > 1)
    SELECT org_id, profile_type, profile, count(*) AS winners, max(specificity) AS specificity,
           min(price_id) AS price_id, min(unit) AS unit, min(unit_price) AS unit_price, min(currency) AS currency,
           string_agg(price_id, ', ' ORDER BY price_id) AS tied
    FROM best
    WHERE place = 1
    GROUP BY org_id, profile_type, profile
),
-- NOT MATERIALIZED: both inserts re-read the window's usage (a cheap index scan) instead of spilling a
-- million wide rows to a tuplestore; the classification is still written once.
rated AS NOT MATERIALIZED (
    SELECT u.org_id, u.organization, u.record_seq, u.profile_type, u.profile, u.instance, u.instance_id,
           u.instance_key, u.usage_hours, u.gpu_count, u.invalid_reason, pr.winners, pr.price_id, pr.unit, pr.unit_price, pr.currency,
           CASE
               WHEN u.invalid_reason IS NOT NULL OR u.usage_hours IS NULL OR u.usage_hours < 0 THEN 'invalid_usage'
               WHEN pr.price_id IS NULL THEN 'unpriced'
               WHEN pr.winners > 1 THEN 'ambiguous_price'
               WHEN pr.unit = 'gpu_hour' AND (u.gpu_count IS NULL OR u.gpu_count < 0) THEN 'missing_gpu_count'
           END AS reason,
           CASE
               WHEN u.invalid_reason IS NOT NULL THEN u.invalid_reason
               WHEN u.usage_hours IS NULL THEN 'missing usage hours'
               WHEN u.usage_hours < 0 THEN 'negative usage hours: ' || u.usage_hours
               WHEN pr.price_id IS NULL THEN
                   'no price book row applies to org_id ' || quote_literal(u.org_id)
                   || ', profile_type ' || quote_literal(u.profile_type) || ', profile ' || quote_literal(u.profile)
                   || ' at ' || %(window_start_iso)s
               WHEN pr.winners > 1 THEN
                   pr.winners || ' price rows tie at specificity ' || pr.specificity || ': ' || pr.tied
               WHEN pr.unit = 'gpu_hour' AND u.gpu_count IS NULL THEN
                   'price ' || pr.price_id || ' is per gpu_hour but the instance has no GPU count'
               WHEN pr.unit = 'gpu_hour' AND u.gpu_count < 0 THEN
                   'price ' || pr.price_id || ' is per gpu_hour but the GPU count is negative: ' || u.gpu_count
           END AS detail
    FROM billing.usage_records AS u
    LEFT JOIN prices AS pr USING (org_id, profile_type, profile)
    WHERE u.window_start = %(window_start)s AND u.window_end = %(window_end)s
),
billable AS (
    SELECT org_id, organization, profile_type, profile, instance, instance_id, instance_key, usage_hours,
           gpu_count, price_id, unit, unit_price, currency,
           CASE WHEN unit = 'gpu_hour' THEN usage_hours * gpu_count ELSE usage_hours END AS quantity
    FROM rated
    WHERE reason IS NULL
),
items AS (
    INSERT INTO billing.charge_line_items (
        window_start, window_end, org_id, organization, profile_type, profile, instance, instance_id,
        instance_key, usage_hours, gpu_count, pricing_unit, pricing_quantity, unit_price, currency, amount,
        price_id, run_id
    )
    -- Several records with one instance_key (seed-era records without ids) make one summed line item.
    -- round() on numeric rounds half away from zero: half-up for the non-negative amounts billed here.
    SELECT %(window_start)s, %(window_end)s, org_id, min(organization), profile_type, profile, min(instance),
           min(instance_id), instance_key, sum(usage_hours),
           CASE WHEN min(gpu_count) = max(gpu_count) THEN min(gpu_count) END,
           unit, sum(quantity), unit_price, currency, round(sum(quantity) * unit_price, 2), price_id, %(run_id)s
    FROM billable
    GROUP BY org_id, profile, instance_key, profile_type, price_id, unit, unit_price, currency
    RETURNING 1
),
exceptions AS (
    INSERT INTO billing.rating_exceptions (
        window_start, window_end, org_id, organization, profile_type, profile, instance, instance_id,
        instance_key, record_seq, usage_hours, gpu_count, price_id, reason, detail, run_id
    )
    SELECT %(window_start)s, %(window_end)s, org_id, organization, profile_type, profile, instance, instance_id,
           instance_key, record_seq, usage_hours, gpu_count, CASE WHEN winners = 1 THEN price_id END,
           reason, detail, %(run_id)s
    FROM rated
    WHERE reason IS NOT NULL
    RETURNING 1
)
SELECT (SELECT count(*) FROM items) AS line_items, (SELECT count(*) FROM exceptions) AS exceptions;
