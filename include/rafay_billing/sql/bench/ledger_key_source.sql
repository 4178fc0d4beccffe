-- One day of rated items: %(orgs)s orgs x %(instances)s instances, shaped like the rating's (uuid
-- instance keys, six profiles, GPU hours priced and rounded once).
INSERT INTO lab_key.source (
    org_id, usage_date, profile, instance_key, window_start, window_end, organization, profile_type, instance,
    instance_id, usage_hours, gpu_count, pricing_unit, pricing_quantity, unit_price, currency, minor_unit, amount,
    price_id, run_id, billing_period_start
)
SELECT 'org-' || lpad(o::text, 5, '0'), %(day)s::date, 'gpu-profile-' || (i %% 6), k.key,
       billing.utc_midnight(%(day)s::date), billing.utc_midnight(%(day)s::date) + interval '1 day', 'Org ' || o, 'ncp',
       'inst-' || i, k.key, h.hours, 8, 'gpu_hour', h.hours * 8, 2.5, 'USD', 2, round(h.hours * 8 * 2.5, 2),
       'p-' || (i %% 6), 'bench', billing.period_of(%(day)s::date)
FROM generate_series(1, %(orgs)s) AS o, generate_series(1, %(instances)s) AS i,
     LATERAL (SELECT md5(o::text || '/' || i::text)::uuid::text AS key) AS k,
     LATERAL (SELECT round((((o * 7919 + i * 104729) %% 2400) / 100.0)::numeric, 6) AS hours) AS h;
