-- COPY cannot supply constants: usage_records.run_id defaults to this transaction-local setting.
SELECT set_config('billing.run_id', %(run_id)s, true);
