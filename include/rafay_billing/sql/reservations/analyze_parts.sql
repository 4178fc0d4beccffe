-- Statistics of the parts and of the stage, so the split's joins are planned as hash joins.
ANALYZE pg_temp.coverage_parts, pg_temp.rated_days;
