-- Where the fresh rating of days of closed periods goes: compared with what was issued, never billed as is.
CREATE TEMPORARY TABLE IF NOT EXISTS rated_closed_days (LIKE billing.charge_line_items INCLUDING DEFAULTS)
    ON COMMIT DROP;
