-- While a close reads what it issues, no rating, load failure or re-rating of any day may change it:
-- SHARE locks wait for running ratings to commit and hold new ones off until the close commits. Taken in
-- the order ratings take them (exceptions, items, coverage), so a close and a rating never deadlock.
LOCK TABLE billing.rating_exceptions, billing.charge_line_items, billing.coverage IN SHARE MODE;
