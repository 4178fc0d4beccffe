-- The rows of rating/fetch_ncp_metrics_rows.sql in the order of the sorted ncp-metrics CSV: the seed's
-- sort_csv key (Organization, Profile Type, Profile, Instance) by plain code point comparison, as
-- Python compares str (COLLATE "C" compares UTF-8 bytes, which order as code points do, whatever the
-- database's default collation), equal keys in the unsorted file's order (Python's sort is stable).
SELECT u.organization, u.profile_type, u.profile, u.instance, u.seed_usage, u.status
FROM billing.coverage AS c
JOIN billing.usage_records AS u
  ON u.org_id = c.org_id AND u.usage_date = c.usage_date AND u.run_id = c.billed_run_id
WHERE c.usage_date >= %(first_day)s AND c.usage_date < %(end_day)s
ORDER BY u.organization COLLATE "C", u.profile_type COLLATE "C", u.profile COLLATE "C", u.instance COLLATE "C",
         u.org_seq, u.org_id, u.usage_date, u.record_seq;
