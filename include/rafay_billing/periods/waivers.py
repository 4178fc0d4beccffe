"""Waivers: an operator's decision, with a reason, that an exception's records are not billed."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from rafay_billing.db import sql, transaction
from rafay_billing.errors import WaiverError
from rafay_billing.period import Period, period_params

REASONS: tuple[str, ...] = (
    "unpriced", "ambiguous_price", "missing_gpu_count", "invalid_usage", "usage_exceeds_window", "missing_dimension",
    "usage_outside_day",
)
"""Exception reasons a waiver may name (``billing.rating_exceptions.reason``)."""
LISTED_AT_MOST = 20
"""Messages name this many problems of a kind, then say how many more there are and where to look."""


@dataclass(frozen=True)
class Waiver:
    """An operator's decision that the records of (org, day, profile, instance, reason) are not billed."""

    org_id: str
    usage_date: date
    profile: str
    instance_key: str
    reason: str
    why: str
    waived_by: str
    waived_at: datetime
    records: int = field(default=0)

    def __str__(self) -> str:
        return (f"waived {self.org_id} {self.usage_date} profile {self.profile} instance {self.instance_key} "
                f"({self.reason}, {self.records} record(s)) by {self.waived_by}: {self.why}")


def _check_reason(reason: str) -> None:
    if reason not in REASONS:
        raise WaiverError(f"exception reason {reason!r} is not one of {', '.join(REASONS)}")


def _check_why_and_actor(why: str, actor: str) -> None:
    if not str(why or "").strip():
        raise WaiverError("a waiver needs a reason finance can read (--why \"...\"): why is this record not billed?")
    if not str(actor or "").strip():
        raise WaiverError("a waiver needs the name of who gives it (--by NAME)")


def waive(
    conn: Any, org_id: str, usage_date: date, profile: str, instance_key: str, reason: str, why: str, actor: str
) -> Waiver:
    """Waive the rating exception(s) of one (org, day, profile, instance_key, reason): they stop blocking
    the close of its period (and of any later rating of that record with the same reason).

    Refused, saying what to check, when ``why`` is empty, when no exception matches (the message lists
    what that org's day does hold), or when it is already waived. Recorded in the audit log.
    """
    _check_reason(reason)
    _check_why_and_actor(why, actor)
    key = {"org_id": org_id, "usage_date": usage_date, "profile": profile, "instance_key": instance_key,
           "reason": reason}
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("periods/matching_exceptions.sql"), key)
        matches = cur.fetchall()
        if not matches:
            raise WaiverError(_no_match_message(cur, key))
        _, waived_by, waived_at, earlier_why = matches[0]
        if waived_by is not None:
            raise WaiverError(
                f"{org_id} {usage_date} profile {profile} instance {instance_key} ({reason}) is already waived "
                f"by {waived_by} at {waived_at.isoformat()}: {earlier_why}"
            )
        cur.execute(sql("periods/insert_waiver.sql"), {**key, "why": why.strip(), "actor": actor,
                                                       "records": len(matches)})
        return replace(Waiver(*cur.fetchone()), records=len(matches))


def _no_match_message(cur: Any, key: dict[str, Any]) -> str:
    cur.execute(sql("periods/day_exceptions.sql"), key)
    held = [f"profile {p} instance {k} reason {r}" + (" (waived)" if w else "") for p, k, r, w in cur.fetchall()]
    what = "; it holds: " + "; ".join(held[:LISTED_AT_MOST]) if held else "; that day has no exceptions at all"
    return (
        f"no rating exception matches org {key['org_id']}, day {key['usage_date']}, profile {key['profile']}, "
        f"instance {key['instance_key']}, reason {key['reason']}{what}. Check billing.open_exceptions "
        f"(SELECT org_id, usage_date, profile, instance_key, reason FROM billing.open_exceptions WHERE org_id = "
        f"'{key['org_id']}'): --instance is the instance_key (the instance id, or name:<instance> for records "
        "without one), --profile the profile name"
    )


def waive_open(conn: Any, period: Period, why: str, actor: str) -> list[Waiver]:
    """Waive every open exception that blocks closing ``period`` with one reason (one waiver and audit
    entry each): its days', and those of closed days whose correction lands in it."""
    _check_why_and_actor(why, actor)
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("periods/waive_open.sql"), {**period_params(period), "why": why.strip(), "actor": actor})
        return [Waiver(*row) for row in cur.fetchall()]
