-- FOCUS 1.0 rows of one billing period: every line item that period's invoices carry (the regular
-- items of its own days, and corrections of days of earlier, closed periods), one row per item,
-- column by column as rafay_billing.focus documents. Amounts, prices and quantities stay NUMERIC
-- (exact); timestamps are timestamptz (UTC midnights). Ordered per invoice: org, currency, day, item.
SELECT
    NULL::text                                                      AS "AvailabilityZone",
    li.amount                                                       AS "BilledCost",
    li.org_id                                                       AS "BillingAccountId",
    nullif(li.organization, '')                                     AS "BillingAccountName",
    li.currency::text                                               AS "BillingCurrency",
    billing.utc_midnight((li.billing_period_start + interval '1 month')::date) AS "BillingPeriodEnd",
    billing.utc_midnight(li.billing_period_start)                   AS "BillingPeriodStart",
    -- issue 22: reservation fees and fees are purchases, commitment true-ups too (FOCUS has no true-up)
    CASE li.charge_category WHEN 'usage' THEN 'Usage' ELSE 'Purchase' END AS "ChargeCategory",
    CASE li.charge_class WHEN 'correction' THEN 'Correction' END    AS "ChargeClass",
    -- e.g. "Correction 1 of 2026-10-05, reversal of the issued charge: h100-vm (compute) instance h100-a,
    -- 2026-10-05: 3.3 h x 8 GPUs = 26.4 GPU-Hours x 2.95 USD" (|| and concat, not format(): its
    -- placeholders would read as the driver's)
    CASE li.charge_class
        WHEN 'correction' THEN concat('Correction ', li.correction_seq, ' of ', li.usage_date, ', ',
                                      CASE li.entry WHEN 'reversal' THEN 'reversal of the issued charge'
                                                    ELSE 're-rated charge' END, ': ')
        ELSE ''
    END
    || CASE WHEN li.charge_level = 'month' AND li.contract_id IS NOT NULL
            -- e.g. "reservation_fee of contract r-1 (2026-11): 3920 GPU-Hours x 2.15 USD"
            THEN concat(li.profile, ' of contract ', li.contract_id, ' (', to_char(li.usage_date, 'YYYY-MM'), '): ')
            -- an MRC (issue 22, rule 3): "monthly recurring charge of mrc-vm (compute) instance m1 (2026-11): ..."
            WHEN li.charge_level = 'month'
            THEN concat('monthly recurring charge of ', li.profile, ' (', li.profile_type, ') instance ', li.instance,
                        ' (', to_char(li.usage_date, 'YYYY-MM'), '): ')
            ELSE concat(li.profile, ' (', li.profile_type, ') instance ', li.instance,
                        CASE WHEN li.dimension <> '' THEN ' ' || li.dimension ELSE '' END, ', ', li.usage_date, ': ')
       END
    || CASE WHEN li.pricing_unit = 'gpu_hour' AND li.gpu_count IS NOT NULL
            THEN concat(li.usage_hours, ' h x ', li.gpu_count, ' GPUs = ') ELSE '' END
    || concat(li.pricing_quantity, ' ', u.pricing_unit, ' x ', li.unit_price, ' ', li.currency)
    -- issue 22 rule 2, e.g. " covered by reservation r-1 (list 2.75 USD)"
    || CASE WHEN li.covered_by <> ''
            THEN concat(' covered by reservation ', li.covered_by, ' (list ', li.list_unit_price, ' ', li.currency, ')')
            ELSE '' END                                             AS "ChargeDescription",
    CASE WHEN li.charge_level = 'day' THEN 'Usage-Based'
         WHEN li.pricing_unit = 'one_time' THEN 'One-Time'
         ELSE 'Recurring' END                                       AS "ChargeFrequency",
    li.window_end                                                   AS "ChargePeriodEnd",
    li.window_start                                                 AS "ChargePeriodStart",
    -- a reservation fee is the purchase of a commitment discount (the contract), and usage it covers
    -- (covered_by, issue 22 rule 2) uses it; fees and true-ups are not commitment discounts
    CASE WHEN r.is_fee OR r.is_covered THEN 'Usage' END             AS "CommitmentDiscountCategory",
    CASE WHEN r.is_fee OR r.is_covered THEN li.contract_id END      AS "CommitmentDiscountId",
    CASE WHEN r.is_fee OR r.is_covered THEN li.contract_id END      AS "CommitmentDiscountName",
    CASE WHEN r.is_covered THEN 'Used' END                          AS "CommitmentDiscountStatus",
    CASE WHEN r.is_fee OR r.is_covered THEN 'Reservation' END       AS "CommitmentDiscountType",
    CASE WHEN li.charge_category = 'usage' THEN li.usage_hours END  AS "ConsumedQuantity",
    CASE WHEN li.charge_category = 'usage' THEN 'Hours' END         AS "ConsumedUnit",
    li.amount                                                       AS "ContractedCost",
    li.unit_price                                                   AS "ContractedUnitPrice",
    li.amount                                                       AS "EffectiveCost",
    %(invoice_issuer)s::text                                        AS "InvoiceIssuerName",
    -- covered usage: what it would have cost on demand (rounded once, like an amount)
    CASE WHEN r.is_covered THEN round(li.pricing_quantity * li.list_unit_price, li.minor_unit)
         ELSE li.amount END                                         AS "ListCost",
    CASE WHEN r.is_covered THEN li.list_unit_price ELSE li.unit_price END AS "ListUnitPrice",
    CASE WHEN r.is_covered THEN 'Committed' ELSE 'Standard' END     AS "PricingCategory",
    li.pricing_quantity                                             AS "PricingQuantity",
    u.pricing_unit                                                  AS "PricingUnit",
    %(provider)s::text                                              AS "ProviderName",
    %(publisher)s::text                                             AS "PublisherName",
    NULL::text                                                      AS "RegionId",
    NULL::text                                                      AS "RegionName",
    li.instance_key                                                 AS "ResourceId",
    nullif(li.instance, '')                                         AS "ResourceName",
    nullif(li.profile_type, '')                                     AS "ResourceType",
    %(service_category)s::text                                      AS "ServiceCategory",
    coalesce(nullif(li.profile_type, ''), 'unspecified')            AS "ServiceName",
    nullif(li.profile, '')                                          AS "SkuId",
    li.price_id                                                     AS "SkuPriceId",
    NULL::text                                                      AS "SubAccountId",
    NULL::text                                                      AS "SubAccountName",
    -- the instance's billing labels (Contract ID, ServiceID, ...) as they are, then the rafay: keys
    (li.labels || jsonb_strip_nulls(jsonb_build_object(
        'rafay:org_id', li.org_id,
        'rafay:profile_type', li.profile_type,
        'rafay:profile', li.profile,
        'rafay:instance', li.instance,
        'rafay:instance_id', li.instance_id,
        'rafay:usage_date', li.usage_date::text,
        'rafay:charge_class', li.charge_class,
        'rafay:correction_seq', li.correction_seq,
        'rafay:entry', li.entry,
        'rafay:pricing_unit', li.pricing_unit,
        'rafay:gpu_count', li.gpu_count,
        'rafay:dimension', nullif(li.dimension, ''),
        'rafay:run_id', li.run_id,
        'rafay:reverses_run_id', li.reverses_run_id,
        'rafay:charge_level', li.charge_level,
        'rafay:charge_category', li.charge_category,
        'rafay:contract_id', li.contract_id,
        'rafay:covered_by', nullif(li.covered_by, '')
    )))::text                                                       AS "Tags"
FROM billing.charge_line_items AS li
CROSS JOIN LATERAL (
    SELECT CASE li.pricing_unit
               WHEN 'instance_hour' THEN 'Hours'
               WHEN 'gpu_hour' THEN 'GPU-Hours'
               WHEN 'dimension_hour' THEN coalesce(nullif(li.dimension, ''), 'Instance') || '-Hours'
               WHEN 'month' THEN 'Months'
               WHEN 'one_time' THEN 'Units'
               WHEN 'instance_month' THEN 'Instance-Months'
               WHEN 'gpu_month' THEN 'GPU-Months'
               ELSE li.pricing_unit
           END AS pricing_unit
) AS u
CROSS JOIN LATERAL (
    SELECT li.charge_level = 'month' AND li.profile_type = 'contract' AND li.profile = 'reservation_fee'
           AND li.contract_id IS NOT NULL AS is_fee,
           li.covered_by <> '' AS is_covered
) AS r
WHERE li.billing_period_start = %(period_start)s
ORDER BY li.org_id, li.currency, li.usage_date, li.profile_type, li.profile, li.instance_key, li.dimension,
         li.covered_by, li.charge_class DESC, li.correction_seq, li.entry DESC;
