"""Delivery of issued documents to the provider's billing system (Airflow-free).

* :mod:`.payload`: a document's JSON body (the invoice, its lines and totals; money as decimal strings);
* :mod:`.signature`: the ``X-Rafay-Billing-Signature`` header and the check a receiver runs;
* :mod:`.policy`: which answers are final, which are retried and after how long;
* :mod:`.state`: ``billing.deliveries`` (pending, delivered, failed per document and endpoint);
* :mod:`.send`: the loop that posts every pending document through a transport the caller gives
  (the Airflow step gives it ``HttpHook``'s session);
* :mod:`.cli`: ``rafay-billing deliveries list|retry``.
"""
