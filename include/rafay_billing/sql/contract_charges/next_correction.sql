-- Where a correction of a closed month's contract charge goes: the earliest open period, and the
-- contract's next correction number for that month.
SELECT billing.earliest_open_period(%(month)s::date) AS period,
       1 + coalesce((SELECT max(li.correction_seq) FROM billing.charge_line_items AS li
                     WHERE li.org_id = %(org_id)s AND li.usage_date = %(month)s AND li.charge_level = 'month'
                       AND li.instance_key = %(contract_id)s), 0) AS seq;
