-- The usage that stands for a window's days (each (org, day)'s usage from the run that billed it) in
-- the seed script's order (org listing, then day, then record order): the rows of the ncp-metrics CSVs.
SELECT u.organization, u.profile_type, u.profile, u.instance, u.seed_usage, u.status
FROM billing.coverage AS c
JOIN billing.usage_records AS u
  ON u.org_id = c.org_id AND u.usage_date = c.usage_date AND u.run_id = c.billed_run_id
WHERE c.usage_date >= %(first_day)s AND c.usage_date < %(end_day)s
ORDER BY u.org_seq, u.org_id, u.usage_date, u.record_seq;
