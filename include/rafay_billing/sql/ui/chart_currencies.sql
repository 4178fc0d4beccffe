-- Currencies charged over [first_day, end_day), the largest total first (the daily chart's default).
SELECT currency::text FROM billing.charge_line_items
WHERE usage_date >= %(first_day)s AND usage_date < %(end_day)s
GROUP BY currency
ORDER BY sum(amount) DESC, currency;
