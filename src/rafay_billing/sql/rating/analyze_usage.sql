-- Statistics that know about the rows just loaded, so the rating plan is sized for them.
ANALYZE billing.usage_records;
