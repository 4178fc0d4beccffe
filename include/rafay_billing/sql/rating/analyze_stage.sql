-- Statistics of a stage table just filled, so the next statement's plan is sized for what it holds.
ANALYZE pg_temp.rating_prices;
