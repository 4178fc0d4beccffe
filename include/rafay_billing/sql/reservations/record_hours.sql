-- The records of run_id that the slices' instance items sum: each record's billed hours on its day
-- (the share of its [start, end) inside the day, rounded half-up to 6 places, exactly as
-- rating/rate_days.sql bills it) and its times, read as rate_days.sql reads them. A record that is a
-- whole-record exception (dimension '') is in no item and is left out.
-- Parameters: org_ids text[], usage_dates date[], run_id text, safe_times boolean.
SELECT t.org_id, t.usage_date, t.profile_type, t.profile, t.instance_key, t.ts, t.te,
       CASE WHEN t.ts IS NOT NULL AND t.te IS NOT NULL AND t.te > t.ts
                 AND (t.ts < t.day_start OR t.te > t.day_start + interval '1 day')
            THEN round(t.usage_hours
                       * extract(epoch FROM least(t.te, t.day_start + interval '1 day') - greatest(t.ts, t.day_start))
                       / extract(epoch FROM t.te - t.ts), 6)
            ELSE t.usage_hours END AS hours
FROM (
    SELECT r.org_id, r.usage_date, r.profile_type, r.profile, r.instance_key, r.usage_hours, r.record_seq,
           billing.utc_midnight(r.usage_date) AS day_start,
           -- as rating/rate_days.sql reads them: a plain cast (a time it cannot read fails the statement, and
           -- rating runs again with safe_times) or, with safe_times, billing.record_time, which never fails
           CASE WHEN %(safe_times)s THEN billing.record_time(r.record_start) ELSE r.record_start::timestamptz END AS ts,
           CASE WHEN %(safe_times)s THEN billing.record_time(r.record_end) ELSE r.record_end::timestamptz END AS te
    FROM unnest(%(org_ids)s::text[], %(usage_dates)s::date[]) AS s (org_id, usage_date)
    JOIN billing.usage_records AS r ON r.org_id = s.org_id AND r.usage_date = s.usage_date AND r.run_id = %(run_id)s
    WHERE r.invalid_reason IS NULL AND r.usage_hours >= 0
      -- NOT IN over the slices' whole-record exceptions, read once and hashed (all key columns are NOT
      -- NULL, so it means NOT EXISTS): the exceptions just written have no statistics, and a NOT EXISTS
      -- was planned as a loop over all of them for every record (28M comparisons for 20 orgs' days)
      AND (r.org_id, r.usage_date, r.record_seq) NOT IN (
          SELECT e.org_id, e.usage_date, e.record_seq
          FROM billing.rating_exceptions AS e
          WHERE e.dimension = ''
            AND (e.org_id, e.usage_date) IN (
                SELECT x.org_id, x.usage_date FROM unnest(%(org_ids)s::text[], %(usage_dates)s::date[]) AS x (org_id, usage_date)
            )
      )
) AS t;
