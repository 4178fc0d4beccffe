-- The issuer's last invoice number, held FOR UPDATE until the issuing transaction ends: numbers are
-- taken in one transaction, so a failed close consumes none (no gaps) and two closes never share one.
SELECT last_number FROM billing.invoice_counters WHERE issuer = %(issuer)s FOR UPDATE;
