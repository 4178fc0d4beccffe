-- Statistics of the parts and of the stage, so the split's joins are planned as hash joins. Only the
-- columns the joins and filters read: the stage's other columns (labels, text) would make this ANALYZE
-- cost more than the split itself on a re-rating, when the stage holds every re-rated day.
ANALYZE pg_temp.coverage_parts,
        pg_temp.rated_days (org_id, usage_date, profile_type, profile, instance_key, dimension, covered_by,
                            charge_class, entry);
