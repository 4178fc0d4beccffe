-- Whether the org has an issued document for the period: its line items are served only then (an open
-- month's items still change; another org's period answers as a period that does not exist).
SELECT EXISTS (
    SELECT 1 FROM billing.invoices AS i WHERE i.org_id = %(org_id)s AND i.period_start = %(period_start)s
) AS issued;
