-- The parts (pairwise arrays) into pg_temp.coverage_parts.
INSERT INTO pg_temp.coverage_parts (org_id, usage_date, profile_type, profile, instance_key, covered_by, quantity, hours)
SELECT * FROM unnest(%(org_ids)s::text[], %(usage_dates)s::date[], %(profile_types)s::text[], %(profiles)s::text[],
                     %(instance_keys)s::text[], %(covered_bys)s::text[], %(quantities)s::numeric[], %(hours)s::numeric[]);
