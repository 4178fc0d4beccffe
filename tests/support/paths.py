"""Where the checkout's files are, for tests only (the package itself never computes repo paths)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO / "dags"
DEMO_PRICE_BOOK = REPO / "include" / "rafay_devkit" / "data" / "price_book.csv"
