-- Whether an org id is one the ledger knows (listed by a run, or invoiced): a token for a mistyped org
-- would see nothing, so the command refuses it unless told otherwise.
SELECT EXISTS (SELECT 1 FROM billing.org_registry WHERE org_id = %(org_id)s)
    OR EXISTS (SELECT 1 FROM billing.invoices WHERE org_id = %(org_id)s) AS known;
