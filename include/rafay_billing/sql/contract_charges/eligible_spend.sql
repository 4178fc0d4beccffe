-- A commitment's eligible spend (issue 22, rule 4): the org's usage charges in the commitment's currency
-- for usage dated on the in-term days [first_day, end_day) of a month, as currently rated: the days'
-- regular items plus every later correction of those days (a reversal and its new charge net to the
-- change), whichever period they landed in. Reservation fees, fees and true-ups (charge_category
-- purchase, true_up) never count; covered usage counts with its amount, 0. Month-priced days bill 0 as
-- day items: their MRC (month-level usage items of the month, dated on its first day, and their
-- corrections) counts here when the term covers the whole month (whole_month); for a part of a month the
-- caller adds the in-term days' exact shares (rafay_billing.contracts.mrc.in_term_share). A caller that
-- counts the month's MRC as computed now (the preview: drafted MRC items would be replaced by the close,
-- pending corrections of a closed month's MRC too) leaves the month-level items out (count_month_items).
SELECT coalesce(sum(li.amount), 0) AS eligible
FROM billing.charge_line_items AS li
WHERE li.org_id = %(org_id)s AND li.currency = %(currency)s AND li.charge_category = 'usage'
  AND ((li.charge_level = 'day' AND li.usage_date >= %(first_day)s AND li.usage_date < %(end_day)s)
       OR (%(whole_month)s AND %(count_month_items)s AND li.charge_level = 'month' AND li.usage_date = %(month)s));
