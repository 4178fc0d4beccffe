-- Back to the connecting user for the rest of the transaction.
SET LOCAL ROLE NONE;
