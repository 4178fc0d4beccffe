"""Contracts (issue 22): reservations, minimum commitments and fees, synced from a CSV like the price book.

``source`` parses and validates the CSV, ``sync`` keeps every version of every contract in
``billing.contract_versions`` (the current ones are the view ``billing.contracts``), ``charges``
computes month-level charges as pure Decimal arithmetic. No Airflow import anywhere here.
"""
