-- The records of run_id that the slices' instance items sum: each record's billed hours on its day
-- (the share of its [start, end) inside the day, rounded half-up to 6 places, exactly as
-- rating/rate_days.sql bills it) and its times (read by billing.record_time, which never fails). A record
-- that is a whole-record exception (dimension '') is in no item and is left out.
-- Parameters: org_ids text[], usage_dates date[], run_id text.
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
           billing.record_time(r.record_start) AS ts, billing.record_time(r.record_end) AS te
    FROM unnest(%(org_ids)s::text[], %(usage_dates)s::date[]) AS s (org_id, usage_date)
    JOIN billing.usage_records AS r ON r.org_id = s.org_id AND r.usage_date = s.usage_date AND r.run_id = %(run_id)s
    WHERE r.invalid_reason IS NULL AND r.usage_hours >= 0
      AND NOT EXISTS (
          SELECT 1 FROM billing.rating_exceptions AS e
          WHERE e.org_id = r.org_id AND e.usage_date = r.usage_date AND e.record_seq = r.record_seq
            AND e.dimension = ''
      )
) AS t;
