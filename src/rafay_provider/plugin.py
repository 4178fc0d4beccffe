"""The Airflow plugin of the billing pipeline, registered through the ``airflow.plugins`` entry point.

Loaded by every Airflow process at start-up, so it imports nothing heavy: the UI parts it adds
import their own dependencies when a request needs them.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin


class RafayBillingPlugin(AirflowPlugin):
    """The plugin of the ``rafay-billing`` package (the UI issue gives it its views)."""

    name = "rafay_billing"
