-- GPU-hours (usage hours x GPU count of the billed instances) per profile over [first_day, end_day).
-- An instance priced per dimension has several items (the instance, CPU, Disk, ...), all carrying its
-- hours: each instance's hours count once (its first item by dimension).
SELECT profile, sum(usage_hours * gpu_count) AS gpu_hours, count(*) AS items
FROM (
    SELECT DISTINCT ON (org_id, usage_date, profile, instance_key, charge_class, correction_seq, entry)
           profile, usage_hours, gpu_count
    FROM billing.charge_line_items
    WHERE usage_date >= %(first_day)s AND usage_date < %(end_day)s AND gpu_count > 0
    ORDER BY org_id, usage_date, profile, instance_key, charge_class, correction_seq, entry, dimension
) AS per_instance
GROUP BY profile
ORDER BY gpu_hours DESC, profile;
