-- The issuer's last number after a close issued `issued` invoices.
UPDATE billing.invoice_counters SET last_number = last_number + %(issued)s WHERE issuer = %(issuer)s
RETURNING last_number;
