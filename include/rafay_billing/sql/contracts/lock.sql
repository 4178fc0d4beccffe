-- One contracts sync at a time (readers keep reading the committed versions meanwhile), and no month
-- closes while the sync decides which closed months a change touches.
LOCK TABLE billing.contract_versions IN SHARE ROW EXCLUSIVE MODE;
LOCK TABLE billing.billing_periods IN SHARE MODE;
