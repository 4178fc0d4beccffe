"""Guards on what a rating may replace (issue 21, rules 2 and 3), decided under the slices' rating locks.

Why: the ledger used to take whatever a later run said as the truth. An empty or shrunken re-read
(API retention, a permissions change) replaced a billed day and, on a closed day, refunded it; a run
that extracted before another run's re-read but rated after it restored the older usage. So:

- every (org, day) extraction takes an ``extraction_seq`` from a PostgreSQL sequence before its first
  request to Rafay (:func:`next_extraction_seq`; the load records it in ``billing.extractions``);
- rating replaces a day only with an extraction whose seq is >= the one the day holds; an older one
  is ``superseded`` (logged, the day left alone);
- a newer extraction whose total instance hours fall below ``shrink_guard_ratio`` x the held
  extraction's, or that has no records where the held one has some, is ``held``: the day keeps its
  items, its coverage says ``held`` (reason ``usage_shrank``) until an operator accepts the extraction
  (:func:`accept_shrink`) or a later read passes the guard. Re-rating the extraction the day holds
  (a price change, a retry) is never guarded.

So any interleaving of runs ends as a rating of the highest-seq extraction that passed the guard or
was accepted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from rafay_billing.db import sql, transaction
from rafay_billing.ledger.slices import DaySlice

log = logging.getLogger(__name__)

DEFAULT_SHRINK_GUARD_RATIO = Decimal("0.5")
"""``[rafay_billing] shrink_guard_ratio``'s default: a re-read below half the hours the day holds is held."""


class GuardError(ValueError):
    """An acceptance that cannot be done as asked; the message says why and what to do."""


@dataclass(frozen=True)
class GuardDecision:
    """What the guard made of one slice's newest extraction."""

    org_id: str
    usage_date: date
    decision: str  # rate | rerate | superseded | held
    extraction_seq: int | None
    records: int | None
    instance_hours: Decimal | None
    held_seq: int | None
    held_run_id: str | None
    held_records: int | None
    held_hours: Decimal | None

    @property
    def rated(self) -> bool:
        return self.decision in ("rate", "rerate")

    def describe(self, run_id: str, ratio: Decimal) -> str:
        """Why the slice was not rated, in the words the coverage detail and the logs use."""
        day = self.usage_date.isoformat()
        if self.decision == "superseded":
            return (f"superseded: extraction {self.extraction_seq} of run {run_id} is older than extraction "
                    f"{self.held_seq} of run {self.held_run_id}, which the day holds; the day is left as it is")
        return (
            f"usage_shrank: extraction {self.extraction_seq} of run {run_id} read {self.records} record(s), "
            f"{_hours(self.instance_hours)} instance hours; the day holds extraction {self.held_seq} of run "
            f"{self.held_run_id} ({self.held_records} record(s), {_hours(self.held_hours)} h; shrink_guard_ratio "
            f"{ratio}), whose items stand. Accept it with: rafay-billing accept-shrink --org {self.org_id} "
            f"--day {day} --run {run_id} --reason '...', or read the day again"
        )


def _hours(value: Decimal | None) -> str:
    return "0" if value is None else format(value.normalize(), "f")


def next_extraction_seq(conn: Any) -> int:
    """A new extraction's seq: take it before the extraction's first request to Rafay."""
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("guards/next_seq.sql"))
        return int(cur.fetchone()[0])


def check_ratio(value: Any) -> Decimal:
    """A shrink guard ratio: a decimal from 0 (guard only empty re-reads) to 1."""
    try:
        ratio = Decimal(str(value).strip())
    except ArithmeticError:
        ratio = Decimal(-1)
    if not ratio.is_finite() or not Decimal(0) <= ratio <= Decimal(1):
        raise GuardError(f"shrink_guard_ratio must be a decimal from 0 to 1 (e.g. 0.5), got {value!r}")
    return ratio


def guard_slices(
    cur: Any, slices: Sequence[DaySlice], run_id: str, ratio: Decimal = DEFAULT_SHRINK_GUARD_RATIO
) -> Guarded:
    """The slices whose run's extraction may be rated now; marks the others ``held`` or ``superseded``.

    Runs on ``cur`` inside the rating's transaction, after the slices' rating locks are taken, so the
    decision and the rating are one step: no other run rates these days in between. The chosen
    extractions become the days' own only when their rating succeeds (:meth:`Guarded.mark_rated`).
    """
    if not slices:
        return Guarded([], {})
    names = {(s.org_id, s.usage_date): s.organization for s in slices}
    params = {"org_ids": [s.org_id for s in slices], "usage_dates": [s.usage_date for s in slices],
              "run_id": run_id, "ratio": ratio}
    cur.execute(sql("guards/register_unrecorded.sql"), params)
    cur.execute(sql("guards/decide.sql"), params)
    decisions = [GuardDecision(org_id, day, decision, seq, records, hours, held_seq, held_run, held_records,
                               held_hours)
                 for org_id, day, seq, records, hours, held_seq, held_run, held_records, held_hours, decision
                 in cur.fetchall()]
    refused = [d for d in decisions if not d.rated]
    if refused:
        cur.execute(sql("guards/mark_decided.sql"), {
            "seqs": [d.extraction_seq for d in refused], "statuses": [d.decision for d in refused],
            "details": [d.describe(run_id, ratio) for d in refused],
        })
    held = [d for d in refused if d.decision == "held"]
    if held:
        cur.execute(sql("coverage/hold.sql"), {
            "org_ids": [d.org_id for d in held], "usage_dates": [d.usage_date for d in held],
            "organizations": [names[(d.org_id, d.usage_date)] or d.org_id for d in held],
            "run_ids": [run_id] * len(held), "billed_run_ids": [d.held_run_id for d in held],
            "details": [d.describe(run_id, ratio) for d in held],
        })
    for d in refused:
        log.warning("org %s, day %s: not rated: %s", d.org_id, d.usage_date, d.describe(run_id, ratio))
    chosen = {(d.org_id, d.usage_date): d.extraction_seq for d in decisions
              if d.decision == "rate" and d.extraction_seq is not None}
    keep = {(d.org_id, d.usage_date) for d in decisions if d.rated}
    return Guarded([s for s in slices if (s.org_id, s.usage_date) in keep], chosen)


@dataclass(frozen=True)
class Guarded:
    """What the guard lets through: the slices to rate, and the extraction each new one is rated from."""

    slices: list[DaySlice]
    chosen: dict[tuple[str, date], int]

    def mark_rated(self, cur: Any, slices: Sequence[DaySlice]) -> None:
        """Make the extractions of ``slices`` the ones their days hold (the earlier one ``replaced``).

        Why the caller does it, in the savepoint that rates the same slices: a rating that fails for
        an org rolls its savepoint back and leaves the day's items as they were; the extraction must
        stay unrated with them, or the day would hold a read that was never billed, against which the
        next read's shrink is judged (and the day's own run would be refused as superseded)."""
        seqs = [self.chosen[key] for key in ((s.org_id, s.usage_date) for s in slices) if key in self.chosen]
        if seqs:
            cur.execute(sql("guards/mark_rated.sql"), {"seqs": seqs})
            cur.execute(sql("guards/mark_chosen.sql"), {"seqs": seqs})


def confirm_unchanged(conn: Any, slices: Sequence[tuple[str, date]], run_id: str) -> list[tuple[str, date]]:
    """Record that ``run_id``'s reads of ``slices`` (``(org_id, day)``) read the same as what the days hold,
    for a caller that does not rate unchanged days (the close's late-usage check).

    Why: "any interleaving ends as a rating of the highest-seq read" must hold when that read is not
    rated because nothing changed; otherwise a run that read in between, differently, but rates last,
    would pass the seq check. The day's rated extraction stands as of the confirming read's seq
    (``confirmed_seq``): older reads are ``superseded``, and a held shrink older than it is no longer
    pending (the day is ``billed`` again). Decided under the days' rating locks, comparing the usage
    again there. Returns the (org, day)s confirmed.
    """
    from rafay_billing.ledger.usage_changes import usage_changes

    if not slices:
        return []
    keys = sorted({f"rating|{o}|{d.isoformat()}" for o, d in slices})
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("rating/lock.sql"), {"lock_keys": keys})
        same = [(c.org_id, c.usage_date) for c in usage_changes(conn, slices, run_id)
                if not c.changed and c.billed_run_id is not None]
        if not same:
            return []
        params = {"org_ids": [o for o, _ in same], "usage_dates": [d for _, d in same], "run_id": run_id}
        cur.execute(sql("guards/confirm.sql"), params)
        confirmed = [(org_id, day) for org_id, day in cur.fetchall()]
        if confirmed:
            cur.execute(sql("coverage/release_hold.sql"), {
                "org_ids": [o for o, _ in confirmed], "usage_dates": [d for _, d in confirmed]})
    return confirmed


@dataclass(frozen=True)
class HeldDay:
    """A ``held`` (org, day): its newest extraction shrank; the items of ``billed_run_id`` stand."""

    org_id: str
    usage_date: date
    organization: str
    run_id: str
    billed_run_id: str | None
    detail: str | None

    def __str__(self) -> str:
        return f"{self.org_id} ({self.organization}) {self.usage_date} (held run {self.run_id})"


def held_days(
    conn: Any, first_day: date, end_day: date, org_ids: Sequence[str] | None = None
) -> list[HeldDay]:
    """The ``held`` (org, day)s of ``[first_day, end_day)`` (of ``org_ids`` when given)."""
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("coverage/held_days.sql"), {
            "first_day": first_day, "end_day": end_day, "org_ids": list(org_ids) if org_ids is not None else None,
        })
        return [HeldDay(*row) for row in cur.fetchall()]


def run_decisions(conn: Any, slices: Sequence[DaySlice], run_id: str) -> dict[str, list[tuple[str, date]]]:
    """``{"held": [...], "superseded": [...]}``: the slices whose ``run_id`` extraction the guard refused."""
    if not slices:
        return {"held": [], "superseded": []}
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("guards/run_decisions.sql"), {
            "org_ids": [s.org_id for s in slices], "usage_dates": [s.usage_date for s in slices], "run_id": run_id,
        })
        found: dict[str, list[tuple[str, date]]] = {"held": [], "superseded": []}
        for org_id, day, status in cur.fetchall():
            found[status].append((org_id, day))
        return found
