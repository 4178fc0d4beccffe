-- Where a correction of a closed month would land today: the earliest open period after it (as
-- contract_charges/next_correction.sql and mrc/next_correction.sql place them). Read only.
SELECT billing.earliest_open_period(%(month)s::date) AS period;
