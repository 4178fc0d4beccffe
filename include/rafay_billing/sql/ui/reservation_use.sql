-- Covered usage per reservation and UTC day of [first_day, end_day), in each reservation's unit
-- (instance_hour: hours; gpu_hour: hours x GPU count), as currently rated: a day's regular items, or the
-- charges of its latest correction when it has been corrected (a correction re-bills the whole day).
-- A covered part is the only day item that names a contract (its reservation).
WITH current_items AS (
    SELECT li.usage_date, li.contract_id, li.usage_hours, li.gpu_count
    FROM billing.charge_line_items AS li
    WHERE li.org_id = %(org_id)s AND li.usage_date >= %(first_day)s AND li.usage_date < %(end_day)s
      AND li.charge_level = 'day' AND li.entry = 'charge' AND li.contract_id = ANY (%(contract_ids)s::text[])
      AND li.correction_seq = (SELECT max(x.correction_seq) FROM billing.charge_line_items AS x
                               WHERE x.org_id = li.org_id AND x.usage_date = li.usage_date
                                 AND x.charge_level = 'day')
)
SELECT i.contract_id, i.usage_date,
       sum(CASE WHEN c.unit = 'gpu_hour' THEN i.usage_hours * coalesce(i.gpu_count, 0) ELSE i.usage_hours END)
           AS covered
FROM current_items AS i
JOIN billing.contracts AS c ON c.contract_id = i.contract_id
GROUP BY i.contract_id, i.usage_date
ORDER BY 1, 2;
