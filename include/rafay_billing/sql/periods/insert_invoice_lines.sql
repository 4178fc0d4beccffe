-- The lines of the period's invoices: its items grouped by profile type, profile, price, pricing unit,
-- unit price, charge class, charge category and contract, quantities and amounts summed exactly. Regular
-- lines first (usage, then the month's contract charges: purchases, true-ups, each contract on its own
-- line), then corrections. A monthly recurring charge (charge_level 'month') is a line of its own, after
-- the month-priced day items of amount 0 at its price (issue 22, rule 3) (a reversal and a new charge at one price net out on one line).
INSERT INTO billing.invoice_lines (
    invoice_id, line_no, profile_type, profile, price_id, pricing_unit, unit_price, charge_class, quantity,
    amount, item_count, charge_category, contract_id, charge_level
)
SELECT i.invoice_id,
       row_number() OVER (PARTITION BY i.invoice_id
                          ORDER BY l.charge_class = 'correction', l.contract_id IS NOT NULL, l.charge_category,
                                   l.contract_id, l.profile_type, l.profile, l.price_id, l.pricing_unit,
                                   l.unit_price, l.charge_level),
       l.profile_type, l.profile, l.price_id, l.pricing_unit, l.unit_price, l.charge_class, l.quantity, l.amount,
       l.item_count, l.charge_category, l.contract_id, l.charge_level
FROM (
    SELECT li.org_id, li.currency, li.profile_type, li.profile, li.price_id, li.pricing_unit, li.unit_price,
           li.charge_class, li.charge_category, li.contract_id, li.charge_level, sum(li.pricing_quantity) AS quantity,
           sum(li.amount) AS amount, count(*) AS item_count
    FROM billing.charge_line_items AS li
    WHERE li.billing_period_start = %(period_start)s
    GROUP BY li.org_id, li.currency, li.profile_type, li.profile, li.price_id, li.pricing_unit, li.unit_price,
             li.charge_class, li.charge_category, li.contract_id, li.charge_level
) AS l
JOIN billing.invoices AS i
  ON i.org_id = l.org_id AND i.currency = l.currency AND i.period_start = %(period_start)s;
