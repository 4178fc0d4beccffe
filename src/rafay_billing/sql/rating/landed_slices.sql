-- The (org, day) slices a run landed usage for within a window, with the org's display name.
SELECT org_id, usage_date, min(organization) AS organization
FROM billing.usage_records
WHERE run_id = %(run_id)s AND usage_date >= %(first_day)s AND usage_date < %(end_day)s
GROUP BY org_id, usage_date
ORDER BY org_id, usage_date;
