-- The tenant API's session: a bound on every statement, and a name in pg_stat_activity.
SELECT set_config('statement_timeout', %(statement_timeout)s, false),
       set_config('application_name', 'rafay-billing-tenant-api', false);
