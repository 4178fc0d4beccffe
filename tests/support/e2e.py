"""Helpers for the end-to-end DAG tests: run the real DAG with ``airflow dags test`` against the
simulator and a real PostgreSQL, and compute expected charges independently of the pipeline."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import psycopg

from rafay_devkit.airflow_env import airflow_env, dags_test, migrate_metadata_db

NOW = datetime(2026, 11, 27, tzinfo=UTC)
BILLING_START_DATE = "2026-11-10"  # the first day these tests bill


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


_TEMPLATE_LOCK = threading.Lock()
_TEMPLATES: dict[Path, Path] = {}  # pytest's base temp dir -> its migrated metadata database


def _migrated_template(tmp_path_factory) -> Path:
    """The session's migrated SQLite metadata database: ``airflow db migrate`` once (a CLI start-up of
    about 4 s of CPU), copied into every home, rather than once per home."""
    with _TEMPLATE_LOCK:  # homes are also made in threads (test_celery_topology's reference run)
        base = tmp_path_factory.getbasetemp()
        if base not in _TEMPLATES:
            home = tmp_path_factory.mktemp("airflow-metadata-template")
            migrate_metadata_db(
                airflow_env(home, rafay_url="http://unused", rafay_api_key="unused",
                            billing_dsn="postgresql://postgres@127.0.0.1:1/x", data_uri="file:///tmp/unused")
            )
            _TEMPLATES[base] = home / "airflow.db"
        return _TEMPLATES[base]


def metadata_home(tmp_path_factory, name: str) -> Path:
    """A fresh Airflow home with a freshly migrated metadata database of its own (one per e2e module).

    The database is a copy of the session's migrated template (only ``airflow.db``: Airflow writes the
    home's own ``airflow.cfg``, with its own keys, on first use), so homes share no state."""
    template = _migrated_template(tmp_path_factory)
    home = tmp_path_factory.mktemp(name)
    shutil.copyfile(template, home / "airflow.db")
    return home


@dataclass
class DagRunResult:
    proc: subprocess.CompletedProcess

    @property
    def ok(self) -> bool:
        return self.proc.returncode == 0

    @property
    def output(self) -> str:
        return self.proc.stdout + self.proc.stderr


class BillingRunner:
    """Runs ``airflow dags test rafay_usage_billing`` with this test's services wired in."""

    def __init__(self, airflow_home: Path, sim, billing_dsn: str, landing: Path, price_book: Path | None,
                 billing_start_date: str = BILLING_START_DATE, rafay_extra: dict | None = None,
                 connections_file: Path | None = None):
        self.billing_start_date = billing_start_date
        self.rafay_extra = dict(rafay_extra or {})
        self.airflow_home = airflow_home
        self.sim = sim
        self.billing_dsn = billing_dsn
        self.landing = landing
        self.price_book = price_book
        self.connections_file = connections_file  # connections through LocalFilesystemBackend, not env

    def env(self) -> dict[str, str]:
        env = airflow_env(
            self.airflow_home,
            rafay_url=self.sim.url,
            rafay_api_key=self.sim.api_key,
            billing_dsn=self.billing_dsn,
            data_uri=self.landing.as_uri(),
            price_book_uri=self.price_book.as_uri() if self.price_book else None,
            rafay_extra={"read_timeout": 15, "max_retries": 5, **self.rafay_extra},
            billing_start_date=self.billing_start_date,
            connections_file=self.connections_file,
        )
        # One quick task retry, so the retry path runs without minutes of waiting.
        env["RAFAY_BILLING_EXTRACT_RETRIES"] = "1"
        env["RAFAY_BILLING_EXTRACT_RETRY_DELAY_SECONDS"] = "1"
        # The other tasks' one retry (list_orgs, the database steps, the close's) after 1 s, not the
        # default minute: `airflow dags test` waits a retry delay out, so a run refused by a retried
        # task (e.g. list_orgs on a partner-only console) sat idle for 60 s. The retry itself still runs.
        env["RAFAY_BILLING_RETRY_DELAY_SECONDS"] = "1"
        return env

    def run(self, logical_date: str, conf: dict | None = None) -> DagRunResult:
        return DagRunResult(dags_test(self.env(), logical_date, conf))

    def query(self, sql: str, params: dict | None = None) -> list[tuple]:
        with psycopg.connect(self.billing_dsn) as conn:
            return conn.execute(sql, params or {}).fetchall()

    def line_items(self, ws: datetime, we: datetime) -> list[dict]:
        with psycopg.connect(self.billing_dsn) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT * FROM billing.charge_line_items WHERE window_start >= %s AND window_end <= %s",
                (ws, we),
            )
            cols = [d.name for d in cur.description]
            return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def exceptions(self, ws: datetime, we: datetime) -> list[dict]:
        with psycopg.connect(self.billing_dsn) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT * FROM billing.rating_exceptions WHERE window_start >= %s AND window_end <= %s",
                (ws, we),
            )
            cols = [d.name for d in cur.description]
            return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]


# --- independent expectations ------------------------------------------------------------------


def overlap_hours(instance, ws: datetime, we: datetime, now: datetime = NOW) -> Decimal:
    end = min(t for t in (instance.stopped_at or instance.deleted_at, we, now) if t is not None)
    start = max(instance.created_at, ws)
    seconds = max(0, int((end - start).total_seconds()))
    return Decimal(seconds) / Decimal(3600)


def gpu_count(profile) -> int | None:
    if profile.gpu_param is not None:
        return profile.gpu_param
    for var in profile.spec_variables:
        name = var["name"].lower()
        if name == "gpu" or "gpu count" in name:
            return int(var["value"])
    return None


def read_price_book(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def _as_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return utc(text if "T" in text else text + "T00:00:00Z")


def choose_price(rows: list[dict], org_id: str, profile_type: str, profile: str, ws: datetime):
    """The contract's rule, written out plainly: (row, None) or (None, reason)."""
    applicable = []
    for row in rows:
        start, end = _as_time(row["effective_from"]), _as_time(row.get("effective_to"))
        if not (start <= ws and (end is None or ws < end)):
            continue
        if row["org_id"] and row["org_id"] != org_id:
            continue
        if row["profile_type"] and row["profile_type"] != profile_type:
            continue
        if row["profile"] and row["profile"] != profile:
            continue
        score = 4 * bool(row["org_id"]) + 2 * bool(row["profile"]) + bool(row["profile_type"])
        applicable.append((score, row))
    if not applicable:
        return None, "unpriced"
    best = max(score for score, _ in applicable)
    top = [row for score, row in applicable if score == best]
    if len(top) > 1:
        return None, "ambiguous_price"
    return top[0], None


def expected_charges(dataset, price_rows: list[dict], ws: datetime, we: datetime, now: datetime = NOW):
    """(line items keyed by (org, profile, instance_key), exceptions as (org, profile, instance, reason))."""
    items: dict[tuple, dict] = {}
    exceptions: set[tuple] = set()
    for org in dataset.orgs:
        for profile in org.profiles:
            for inst in profile.instances:
                hours = overlap_hours(inst, ws, we, now)
                if hours == 0:
                    continue
                raw = inst.record_overrides.get("raw_usage", hours)
                if not isinstance(raw, int | Decimal) or raw < 0:
                    exceptions.add((org.org_id, profile.name, inst.name, "invalid_usage"))
                    continue
                row, reason = choose_price(price_rows, org.org_id, profile.type, profile.name, ws)
                if reason:
                    exceptions.add((org.org_id, profile.name, inst.name, reason))
                    continue
                if row["unit"] == "gpu_hour":
                    gpus = gpu_count(profile)
                    if gpus is None:
                        exceptions.add((org.org_id, profile.name, inst.name, "missing_gpu_count"))
                        continue
                    quantity = hours * gpus
                else:
                    quantity = hours
                amount = (quantity * Decimal(row["unit_price"])).quantize(Decimal("0.01"), ROUND_HALF_UP)
                items[(org.org_id, profile.name, inst.instance_id)] = {
                    "usage_hours": hours,
                    "pricing_quantity": quantity,
                    "unit_price": Decimal(row["unit_price"]),
                    "currency": row["currency"],
                    "amount": amount,
                    "price_id": row["price_id"],
                }
    return items, exceptions
