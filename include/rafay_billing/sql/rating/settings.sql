-- For the rating transaction only (both end with it): enough memory to aggregate a million-row
-- window without spilling to disk (server defaults are often 4 MB), and no JIT compilation, which
-- costs more than a second for this statement and saves less than it costs.
SELECT set_config('work_mem', '512MB', true), set_config('jit', 'off', true);
