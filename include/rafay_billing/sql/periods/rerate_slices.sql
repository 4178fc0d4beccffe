-- The period's days as the ledger holds them, to re-rate against the price book as it stands before
-- the close issues (issue 21, rule 4): every (org, day) billed (with or without exceptions), with the
-- run whose usage billed it. Held and failed days are not re-rated (they keep what they hold).
SELECT c.billed_run_id, c.org_id, c.usage_date, c.organization
FROM billing.coverage AS c
WHERE c.usage_date >= %(period_start)s AND c.usage_date < %(period_end)s
  AND c.status IN ('billed', 'exceptions') AND c.billed_run_id IS NOT NULL
ORDER BY c.billed_run_id, c.org_id, c.usage_date;
