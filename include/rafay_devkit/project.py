"""Where the devkit finds the DAGs and its demo data.

Nothing here is computed from the checkout's layout: the demo price book is package data, and the
DAG folder is the one you point at (``RAFAY_BILLING_DAGS_FOLDER``) or ``./dags`` of the working
directory, as Airflow's own tooling assumes. That keeps the devkit working from a built wheel.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

DAGS_FOLDER_ENV = "RAFAY_BILLING_DAGS_FOLDER"


def dags_folder() -> Path:
    """The folder holding ``rafay_usage_billing.py``: ``$RAFAY_BILLING_DAGS_FOLDER`` or ``./dags``."""
    folder = Path(os.environ.get(DAGS_FOLDER_ENV) or Path.cwd() / "dags").resolve()
    if not (folder / "rafay_usage_billing.py").is_file():
        raise FileNotFoundError(
            f"no rafay_usage_billing.py in {folder}: run from the project's checkout or set "
            f"{DAGS_FOLDER_ENV} to the folder that holds the billing DAGs"
        )
    return folder


def work_dir(name: str) -> Path:
    """A scratch directory for the devkit's local services (``./.demo``, ``./.local``), under the cwd."""
    return Path.cwd() / name


def demo_price_book() -> Path:
    """The demo price book shipped with the devkit (package data, a real file in any wheel install)."""
    return Path(str(files("rafay_devkit").joinpath("data", "price_book.csv")))


def demo_contracts() -> Path:
    """The demo's contracts (a reservation accepted mid-day, a fee, a commitment): package data."""
    return Path(str(files("rafay_devkit").joinpath("data", "contracts.csv")))


def demo_monthly_prices() -> Path:
    """The demo's monthly recurring prices (``gpu_month``), added to the demo price book by ``make demo``
    only: the price book itself is the tests' hourly reference."""
    return Path(str(files("rafay_devkit").joinpath("data", "monthly_prices.csv")))
