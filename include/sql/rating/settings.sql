-- For the rating transaction only: enough memory to sort a million-row window without spilling to
-- disk (the server default is often 4 MB). Ends with the transaction.
SELECT set_config('work_mem', '256MB', true);
