-- Where a correction of a closed month's MRC goes: the earliest open period, and the instance's next
-- correction number for that month's month-level item.
SELECT billing.earliest_open_period(%(month)s::date) AS period,
       1 + coalesce((SELECT max(li.correction_seq) FROM billing.charge_line_items AS li
                     WHERE li.org_id = %(org_id)s AND li.usage_date = %(month)s AND li.charge_level = 'month'
                       AND li.profile_type = %(profile_type)s AND li.profile = %(profile)s
                       AND li.instance_key = %(instance_key)s AND li.dimension = ''), 0) AS seq;
