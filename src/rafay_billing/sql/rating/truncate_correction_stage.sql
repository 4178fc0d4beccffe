-- The stage is this transaction's own: empty it if an earlier statement of the transaction used it.
TRUNCATE rated_closed_days;
