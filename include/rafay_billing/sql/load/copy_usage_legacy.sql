-- load/copy_usage.sql for a usage CSV landed before migration 006 (rafay_billing.usage.LEGACY_USAGE_COLUMNS:
-- no dimensions/labels; they default to {}). Stream one (org, day)'s usage CSV into
-- the table. Empty unquoted cells are NULL only where NULL means "absent"; text columns keep '' (the
-- seed prints '' for a missing instance or status). usage_date, run_id, source_dir come from settings.
COPY billing.usage_records (
    window_start, window_end, org_id, organization, org_seq, record_seq, profile_type, profile,
    instance, instance_id, instance_key, status, seed_usage, usage_hours, gpu_count, invalid_reason,
    record_start, record_end, source_page, source_index
)
FROM STDIN WITH (
    FORMAT csv,
    HEADER true,
    ENCODING 'UTF8',
    FORCE_NOT_NULL (org_id, organization, profile_type, profile, instance, instance_key, status, seed_usage)
);
