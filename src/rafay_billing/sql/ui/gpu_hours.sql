-- GPU-hours (usage hours x GPU count of the billed instances) per profile over [first_day, end_day).
SELECT profile, sum(usage_hours * gpu_count) AS gpu_hours, count(*) AS items
FROM billing.charge_line_items
WHERE usage_date >= %(first_day)s AND usage_date < %(end_day)s AND gpu_count > 0
GROUP BY profile
ORDER BY gpu_hours DESC, profile;
