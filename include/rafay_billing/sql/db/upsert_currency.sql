-- One ISO 4217 currency and its minor unit (from the iso4217 package); a changed minor unit is taken.
INSERT INTO billing.currencies (currency, minor_unit, name)
VALUES (%(currency)s, %(minor_unit)s, %(name)s)
ON CONFLICT (currency) DO UPDATE SET minor_unit = EXCLUDED.minor_unit, name = EXCLUDED.name
WHERE (billing.currencies.minor_unit, billing.currencies.name) IS DISTINCT FROM (EXCLUDED.minor_unit, EXCLUDED.name);
