-- For the rating transaction only (both end with it): enough memory to aggregate a million-row
-- window without spilling to disk (server defaults are often 4 MB), and no JIT compilation, which
-- costs more than a second for this statement and saves less than it costs. UTC: a usage record's
-- time without a zone is read as UTC (rating/rate_days.sql), whatever the server's default.
SELECT set_config('work_mem', '512MB', true), set_config('jit', 'off', true), set_config('TimeZone', 'UTC', true);
