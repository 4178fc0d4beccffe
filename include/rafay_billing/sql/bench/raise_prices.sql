-- Benchmark only: every price 1 % higher (a price book change that changes every line item), so the
-- next re-rating replaces every item of the day.
UPDATE billing.price_book SET unit_price = round(unit_price * 1.01, 4);
