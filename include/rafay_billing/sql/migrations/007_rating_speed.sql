-- 007: what rating a million usage rows a day needs from the schema (issue 14, bench/bench_rating.py).
--
-- billing.period_of(date) truncated a date promoted to timestamptz: date_trunc(text, timestamptz) is
-- STABLE (it depends on the session's TimeZone), so the IMMUTABLE SQL function could not be inlined,
-- and it was called as a function on every row of every statement and check constraint that names
-- it (three times per line item inserted: charge_line_items_period_is_a_month and
-- charge_line_items_regular_on_its_own_period). On a plain timestamp the truncation is immutable,
-- inlinable and independent of the session's time zone; it returns the same month for every date.
CREATE OR REPLACE FUNCTION billing.period_of(d date) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN date_trunc('month', d::timestamp)::date;

-- The line-items-need-usage rule (003/004), same rule, cheaper: the landed usage of the slices the
-- statement touched is read by one index scan per slice (behind an OFFSET 0 fence) instead of a
-- sequential scan of the whole usage table, whose size grows with every day kept.
CREATE OR REPLACE FUNCTION billing.check_line_items_have_usage() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    orphan record;
BEGIN
    WITH slices AS MATERIALIZED (
        SELECT DISTINCT org_id, usage_date, run_id FROM new_items WHERE entry = 'charge'
    )
    SELECT o.* INTO orphan FROM (
        SELECT n.org_id, n.usage_date, n.profile, n.instance_key, n.run_id FROM new_items AS n
        WHERE n.entry = 'charge'
        EXCEPT
        SELECT s.org_id, s.usage_date, u.profile, u.instance_key, s.run_id
        FROM slices AS s
        CROSS JOIN LATERAL (
            SELECT r.profile, r.instance_key FROM billing.usage_records AS r
            WHERE r.org_id = s.org_id AND r.usage_date = s.usage_date AND r.run_id = s.run_id
            OFFSET 0
        ) AS u
    ) AS o
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'line item (%, %, %, %) of run % has no landed usage record of that run',
            orphan.org_id, orphan.usage_date, orphan.profile, orphan.instance_key, orphan.run_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;

-- Line items by day: (usage_date) alone gave every item of a day the same key, so the connections that
-- rate a night's orgs in parallel all inserted into the same last leaf page and waited on its lock.
-- (usage_date, org_id) serves the same day-range reads and spreads the inserts by org.
CREATE INDEX IF NOT EXISTS charge_line_items_day_org_idx ON billing.charge_line_items (usage_date, org_id);
DROP INDEX IF EXISTS billing.charge_line_items_day_idx;
