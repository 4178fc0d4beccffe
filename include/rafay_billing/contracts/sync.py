"""Sync the contracts CSV into ``billing.contracts``, keeping every version, never deleting one.

Why versions: a contract's charges of a closed month were issued from the version that was current
then, so a later change must be compared with it, and corrected, not overwritten. The table
``billing.contract_versions`` keeps them all (the view ``billing.contracts`` shows the current ones);
its triggers refuse DELETE, TRUNCATE and any UPDATE but ending the current version.

What the sync refuses, as a whole and with nothing written:

- a malformed file (:class:`ContractsError`, naming the CSV lines; see :mod:`.source`), including a value
  the database could not store (a too-long id or name, a number beyond NUMERIC): refused before any SQL;
- a file that omits a contract the table holds (the sync never deletes one: a ``term_end`` ends it),
  or that adds or changes a contract in a way that changes what a **closed** month charged or
  covered (:class:`RetroactiveChangeError`, naming the ids and months), unless ``allow_retroactive``.
  Accepted, each such contract gets a ``contracts_retroactive`` entry in ``billing.audit_log``; an
  omitted contract is then kept as it is.

What it only warns about (in the result, for the task log): an org the pipeline has never listed (it
may not be listed yet), and a commitment whose currency matches no price the org has.

A month is "touched" by a change when the contract's terms that decide charges (kind, org, profile,
unit, quantity, prices, currency, frequency) or its term clipped to that month differ between the old
and the new version. A description-only change, or a term moved only in open months, touches none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from rafay_billing.contracts.charges import in_term_span
from rafay_billing.contracts.errors import ContractsError, RetroactiveChangeError
from rafay_billing.contracts.source import Contract, parse_contracts
from rafay_billing.contracts.store import read_contracts
from rafay_billing.db import sql, transaction
from rafay_billing.period import Period

__all__ = [
    "ContractSyncResult", "ContractsError", "ReservedSpan", "RetroactiveChangeError", "contracts_as_of",
    "fetch_contracts", "fetch_versions", "read_contracts", "reserved_spans", "sync_contracts", "touched_months",
]

AUDIT_ACTION = "contracts_retroactive"


@dataclass(frozen=True)
class ContractSyncResult:
    """What a sync changed in ``billing.contracts``, and what the task log should warn about."""

    rows: int
    inserted: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    omitted: tuple[str, ...] = ()
    retroactive: dict[str, tuple[date, ...]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    corrections: tuple[str, ...] = ()
    """``contract_id YYYY-MM``: closed months' contract charges this sync corrected (issue 22, rule 7)."""
    reserved_spans: tuple[ReservedSpan, ...] = ()
    """Where an added or changed reservation's old or new term lies: the days whose coverage may have
    changed, to be rated again (:mod:`rafay_billing.periods.contract_changes`)."""

    @property
    def unchanged(self) -> int:
        return self.rows - len(self.inserted) - len(self.changed)

    def __str__(self) -> str:
        text = (f"{self.rows} contracts: {len(self.inserted)} new{_ids(self.inserted)}, "
                f"{len(self.changed)} changed{_ids(self.changed)}, {self.unchanged} unchanged")
        if self.omitted:
            text += f"; kept though not in the file: {', '.join(self.omitted)}"
        if self.retroactive:
            months = "; ".join(f"{cid} {', '.join(f'{m:%Y-%m}' for m in ms)}"
                               for cid, ms in sorted(self.retroactive.items()))
            text += f"; retroactive changes of closed months accepted (audited): {months}"
        if self.corrections:
            text += f"; corrections written into the earliest open period: {', '.join(self.corrections)}"
        return text


@dataclass(frozen=True)
class ReservedSpan:
    """The part of an org's time a reservation covers before or after a change: [start, end), end None =
    open-ended."""

    org_id: str
    start: datetime
    end: datetime | None


def reserved_spans(old: Contract | None, new: Contract | None) -> list[ReservedSpan]:
    """The spans whose coverage a change from ``old`` to ``new`` can move: each version that is a
    reservation, its org and its term (both, since a term that moved uncovers days it left)."""
    return [ReservedSpan(c.org_id, c.term_start, c.term_end)
            for c in (old, new) if c is not None and c.kind == "reservation"]


def _ids(ids: tuple[str, ...]) -> str:
    return f" ({', '.join(ids)})" if ids else ""


# --- which closed months a change touches -------------------------------------------------------------


def _charge_terms(c: Contract) -> tuple[Any, ...]:
    """What decides the charges besides the term; Decimals by value (1.5 == 1.50 bills the same)."""
    return (c.org_id, c.kind, c.profile_type, c.profile, c.unit, c.quantity, c.unit_price, c.amount, c.currency,
            c.frequency, c.billing_timing, c.true_up_period)


def _effect(c: Contract | None, month: Period, billing_start: date | None) -> tuple[Any, ...] | None:
    """What the contract does to one month: its charge terms and its term clipped to the month (a
    one-time fee: its start, in the month it is charged). None when it does nothing to the month."""
    if c is None:
        return None
    if c.kind == "fee" and c.frequency == "one_time":
        span = in_term_span(c, c.term_start, c.term_start + timedelta(microseconds=1), billing_start)
        return (_charge_terms(c), c.term_start) if span and Period.containing(c.term_start) == month else None
    span = in_term_span(c, month.start_datetime, month.end_datetime, billing_start)
    return None if span is None else (_charge_terms(c), *span)


def touched_months(old: Contract | None, new: Contract | None, closed: Iterable[Period],
                   billing_start: date | None = None) -> list[Period]:
    """The closed months whose charges or coverage differ between two versions (None = no contract)."""
    return [m for m in sorted(closed) if _effect(old, m, billing_start) != _effect(new, m, billing_start)]


# --- reading the table ----------------------------------------------------------------------------------


def fetch_contracts(conn: Any) -> list[Contract]:
    """The current version of every contract (``billing.contracts``), by contract id."""
    from psycopg.rows import dict_row

    with transaction(conn), conn.cursor(row_factory=dict_row) as cur:
        return read_contracts(cur, "contracts/current.sql")


def contracts_as_of(conn: Any, at: datetime) -> list[Contract]:
    """The versions that were current at ``at`` (e.g. a period's ``closed_at``: what its invoices used)."""
    from psycopg.rows import dict_row

    with transaction(conn), conn.cursor(row_factory=dict_row) as cur:
        return read_contracts(cur, "contracts/as_of.sql", {"at": at})


def fetch_versions(conn: Any) -> list[dict[str, Any]]:
    """Every stored version, oldest first per contract (for audits and tests)."""
    from psycopg.rows import dict_row

    with transaction(conn), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql("contracts/versions.sql"))
        return cur.fetchall()


# --- the sync ----------------------------------------------------------------------------------------


def _warnings(cur: Any, contracts: list[Contract]) -> list[str]:
    """Unknown orgs, and commitments in a currency none of the org's prices use."""
    orgs = sorted({c.org_id for c in contracts})
    cur.execute(sql("contracts/listed_orgs.sql"), {"orgs": orgs})
    listed = {row["org_id"] for row in cur.fetchall()}
    cur.execute(sql("contracts/org_currencies.sql"), {"orgs": orgs})
    priced: set[tuple[str, str]] = {(row["org_id"], row["currency"]) for row in cur.fetchall()}
    warnings = []
    for org in orgs:
        if org not in listed:
            ids = ", ".join(c.contract_id for c in contracts if c.org_id == org)
            warnings.append(
                f"org {org!r} (contract(s) {ids}) has never been listed by the pipeline: accepted, but check the "
                "id (the org's metadata.name); a month it charges cannot be closed until the org is listed")
    for c in contracts:
        if c.kind == "commitment" and (c.org_id, c.currency) not in priced:
            warnings.append(
                f"commitment {c.contract_id!r} is in {c.currency} but no price of org {c.org_id!r} is: no spend "
                f"can count against it, so each month's whole committed amount will be a true-up")
    return warnings


def _row(c: Contract, actor: str, retroactive: bool) -> dict[str, Any]:
    return {
        "contract_id": c.contract_id, "org_id": c.org_id, "kind": c.kind, "profile_type": c.profile_type,
        "profile": c.profile, "unit": c.unit, "quantity": c.quantity, "unit_price": c.unit_price,
        "amount": c.amount, "currency": c.currency, "frequency": c.frequency, "term_start": c.term_start,
        "term_end": c.term_end, "billing_timing": c.billing_timing, "true_up_period": c.true_up_period,
        "description": c.description, "source_line": c.line or None, "synced_by": actor,
        "retroactive": retroactive,
    }


def _audit(cur: Any, actor: str, contract_id: str, org_id: str, change: str, months: list[Period]) -> None:
    from psycopg.types.json import Jsonb

    cur.execute(sql("audit/record.sql"), {
        "action": AUDIT_ACTION, "actor": actor, "period_start": months[0].start if months else None,
        "org_id": org_id, "usage_date": None,
        "detail": Jsonb({"contract_id": contract_id, "change": change, "months": [m.label for m in months]}),
    })


@dataclass
class _Plan:
    """The differences between the file and the table, decided before anything is written."""

    inserted: list[Contract] = field(default_factory=list)
    changed: list[Contract] = field(default_factory=list)
    omitted: list[Contract] = field(default_factory=list)
    touched: dict[str, list[Period]] = field(default_factory=dict)
    spans: list[ReservedSpan] = field(default_factory=list)


def _plan(contracts: list[Contract], current: dict[str, Contract], closed: list[Period],
          billing_start: date | None) -> _Plan:
    plan = _Plan()
    in_file = {c.contract_id for c in contracts}
    plan.omitted = [c for cid, c in sorted(current.items()) if cid not in in_file]
    for c in contracts:
        old = current.get(c.contract_id)
        if old is not None and old.same_as(c):
            continue
        (plan.inserted if old is None else plan.changed).append(c)
        plan.spans.extend(reserved_spans(old, c))
        months = touched_months(old, c, closed, billing_start)
        if months:
            plan.touched[c.contract_id] = months
    return plan


def sync_contracts(conn: Any, text: str | bytes, *, allow_retroactive: bool = False, actor: str = "contracts-sync",
                   billing_start: date | None = None) -> ContractSyncResult:
    """Validate ``text`` and store what changed as new versions, atomically; see the module docstring.

    ``actor`` is recorded on each new version and audit entry (the run id or the operator).
    ``billing_start`` (``[rafay_billing] billing_start_date``) keeps months before it out of the
    retroactive check, since nothing is charged for them. Raises :class:`ContractsError` or
    :class:`RetroactiveChangeError` with the table unchanged.
    """
    from psycopg.rows import dict_row

    contracts = parse_contracts(text)
    with transaction(conn), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql("contracts/lock.sql"))
        current = {c.contract_id: c for c in read_contracts(cur, "contracts/current.sql")}
        cur.execute(sql("contracts/closed_periods.sql"))
        closed = [Period(row["period_start"]) for row in cur.fetchall()]
        plan = _plan(contracts, current, closed, billing_start)
        if (plan.touched or plan.omitted) and not allow_retroactive:
            raise RetroactiveChangeError({cid: [m.start for m in ms] for cid, ms in plan.touched.items()},
                                         [c.contract_id for c in plan.omitted])
        for c in plan.changed:
            cur.execute(sql("contracts/close_version.sql"), {"contract_id": c.contract_id})
        for c in plan.inserted + plan.changed:
            cur.execute(sql("contracts/insert_version.sql"), _row(c, actor, c.contract_id in plan.touched))
            if c.contract_id in plan.touched:
                change = "new" if c in plan.inserted else "changed"
                _audit(cur, actor, c.contract_id, c.org_id, change, plan.touched[c.contract_id])
        for c in plan.omitted:
            _audit(cur, actor, c.contract_id, c.org_id, "omitted_kept", [])
        corrections = _correct_closed_months(conn, plan, actor, billing_start)
        warnings = _warnings(cur, contracts)
    return ContractSyncResult(
        rows=len(contracts), inserted=tuple(c.contract_id for c in plan.inserted),
        changed=tuple(c.contract_id for c in plan.changed), omitted=tuple(c.contract_id for c in plan.omitted),
        retroactive={cid: tuple(m.start for m in ms) for cid, ms in plan.touched.items()},
        warnings=tuple(warnings), corrections=tuple(corrections), reserved_spans=tuple(plan.spans),
    )


def _correct_closed_months(conn: Any, plan: _Plan, actor: str, billing_start: date | None) -> list[str]:
    """Rule 7: the accepted change's closed months get their contract charges corrected in the earliest
    open period, in this sync's transaction (an unchanged month writes nothing)."""
    from rafay_billing.contracts.ledger_items import correct_month_charges

    months = sorted({m for ms in plan.touched.values() for m in ms})
    if not months:
        return []
    with conn.cursor() as cur:
        written = correct_month_charges(cur, months, actor, billing_start)
    return [f"{contract_id} {month.label}" for contract_id, month in written]

