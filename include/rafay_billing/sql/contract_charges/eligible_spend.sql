-- A commitment's eligible spend (issue 22, rule 4): the org's usage charges in the commitment's currency
-- for usage dated on the in-term days [first_day, end_day) of a month, as currently rated: the days'
-- regular items plus every later correction of those days (a reversal and its new charge net to the
-- change), whichever period they landed in. Reservation fees, fees and true-ups (charge_category
-- purchase, true_up) never count; covered usage counts with its amount, 0.
SELECT coalesce(sum(li.amount), 0) AS eligible
FROM billing.charge_line_items AS li
WHERE li.org_id = %(org_id)s AND li.currency = %(currency)s
  AND li.usage_date >= %(first_day)s AND li.usage_date < %(end_day)s
  AND li.charge_level = 'day' AND li.charge_category = 'usage';
