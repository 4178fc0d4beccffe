"""Airflow provider metadata for the Rafay connection type (entry point ``apache_airflow_provider``)."""

from __future__ import annotations


def get_provider_info() -> dict:
    return {
        "package-name": "rafay-billing",
        "name": "Rafay",
        "description": "Rafay usage metering APIs: the `rafay` connection type and RafayHook.",
        "versions": ["0.1.0"],
        "connection-types": [
            {"hook-class-name": "rafay_provider.hooks.rafay.RafayHook", "connection-type": "rafay"}
        ],
    }
