-- The latest UTC day with anything rated (line items or exceptions): the Billing view's default window.
SELECT max(usage_date) FROM (
    SELECT max(usage_date) AS usage_date FROM billing.charge_line_items
    UNION ALL
    SELECT max(usage_date) FROM billing.rating_exceptions
) AS days;
