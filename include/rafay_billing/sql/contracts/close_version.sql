-- End the current version of a contract (the trigger allows nothing else of an UPDATE).
UPDATE billing.contract_versions SET valid_to = now()
WHERE contract_id = %(contract_id)s AND valid_to IS NULL;
