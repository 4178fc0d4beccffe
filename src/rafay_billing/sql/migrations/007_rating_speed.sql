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
