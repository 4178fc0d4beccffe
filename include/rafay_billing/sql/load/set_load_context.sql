-- COPY cannot supply constants: usage_records.usage_date, run_id and source_dir default to these
-- transaction-local settings.
SELECT set_config('billing.usage_date', %(usage_date)s, true),
       set_config('billing.run_id', %(run_id)s, true),
       set_config('billing.source_dir', %(source_dir)s, true);
