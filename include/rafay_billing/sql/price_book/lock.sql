-- One price book sync at a time; readers (rating) keep reading the committed book meanwhile.
LOCK TABLE billing.price_book IN SHARE ROW EXCLUSIVE MODE;
