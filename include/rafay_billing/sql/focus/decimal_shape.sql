-- How wide the period's NUMERIC values are, for exact fixed-point Parquet columns: the most digits
-- after the point and the largest magnitude of amounts, unit prices, pricing and consumed quantities.
-- A covered part's list cost and list unit price (ListCost, ListUnitPrice) count with amounts and prices.
SELECT coalesce(max(scale(amount)), 0)            AS amount_scale,
       coalesce(greatest(max(abs(amount)), max(abs(round(pricing_quantity * list_unit_price, minor_unit)))), 0)
                                                  AS amount_max,
       coalesce(greatest(max(scale(unit_price)), max(scale(list_unit_price))), 0) AS unit_price_scale,
       coalesce(greatest(max(abs(unit_price)), max(abs(list_unit_price))), 0)     AS unit_price_max,
       coalesce(max(scale(pricing_quantity)), 0)  AS pricing_quantity_scale,
       coalesce(max(abs(pricing_quantity)), 0)    AS pricing_quantity_max,
       coalesce(max(scale(usage_hours)), 0)       AS usage_hours_scale,
       coalesce(max(abs(usage_hours)), 0)         AS usage_hours_max
FROM billing.charge_line_items
WHERE billing_period_start = %(period_start)s;
