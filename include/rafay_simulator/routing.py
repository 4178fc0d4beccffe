"""The simulated API: which path answers what, in Rafay's JSON with exact decimals.

:class:`ApiRoutes` turns one authenticated request (method, path segments, query) into the JSON
value a real console would send, or raises :class:`ApiError`; it knows nothing of sockets or
faults (the server supplies the listing as faults have changed it, ``_listing_view``).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from rafay_simulator.config import SimulatorConfig
from rafay_simulator.dataset import (
    REMOVE,
    Dataset,
    Instance,
    Org,
    Profile,
    RawNumber,
    format_time,
    hours_2dp,
    stable_uuid,
    usage_display,
)
from rafay_simulator.partner_api import org_listing_item, partner_records, usage_core, usage_parameters

PARTNER_PREFIX = "/apis/billing.envmgmt.io/v1/metrics/partner/instance/kind/"
PARTNER_SEGMENTS = PARTNER_PREFIX.strip("/").split("/")
SEED_FIELDS = ("instance_name", "usage_hours", "status")
_TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_DIGITS_RE = re.compile(r"[0-9]{1,12}")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


class ApiError(Exception):
    """An API error reply: HTTP ``status`` with ``{"error": error, "message": message}``."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


# --- JSON with exact decimals ----------------------------------------------------------------


def _decimal_text(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def to_json(value: Any) -> str:
    """Serialize like ``json.dumps`` but write Decimals as exact JSON numbers (no float artefacts).

    A ``RawNumber`` is written verbatim (``1E+200000`` stays that literal); text with lone
    surrogates (a name given as ``"\\ud800"``) as ``\\u`` escapes, as a real server would send them.
    """
    if isinstance(value, RawNumber):
        return str.__str__(value)
    if isinstance(value, Decimal):
        return _decimal_text(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k), ensure_ascii=False)}: {to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(to_json(v) for v in value) + "]"
    if isinstance(value, str) and _SURROGATE_RE.search(value):
        return json.dumps(value)  # a lone surrogate only travels as a \\ud800 escape (not encodable in UTF-8)
    return json.dumps(value, ensure_ascii=False)


def parse_time(value: str | None, name: str) -> datetime:
    """Accept exactly RFC 3339 UTC with second precision and ``Z`` (what the real API documents)."""
    if not value:
        raise ApiError(400, "bad_request", f"missing required query parameter {name}")
    if not _TIME_RE.fullmatch(value):
        raise ApiError(400, "bad_request", f"{name} must be RFC 3339 UTC like 2026-11-01T00:00:00Z, got {value!r}")
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise ApiError(400, "bad_request", f"{name} is not a valid time: {value!r}") from None


def _window(query: dict[str, str], start_name: str, end_name: str) -> tuple[datetime, datetime]:
    start = parse_time(query.get(start_name), start_name)
    end = parse_time(query.get(end_name), end_name)
    if end <= start:
        raise ApiError(400, "bad_request", f"{end_name} must be after {start_name}")
    return start, end


def _int_param(query: dict[str, str], name: str, minimum: int) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    if not _DIGITS_RE.fullmatch(raw) or int(raw) < minimum:
        raise ApiError(400, "bad_request", f"{name} must be an integer >= {minimum}, got {raw!r}")
    return int(raw)


# --- the routes ------------------------------------------------------------------------------


class ApiRoutes:
    """The API endpoints, mixed into :class:`~rafay_simulator.server.RafaySimulator`.

    Reads ``config`` and ``dataset`` on every request (a test may swap the dataset of a running
    simulator), the simulated clock ``now()`` and ``_listing_view`` (the listing as faults changed it).
    """

    config: SimulatorConfig
    dataset: Dataset

    def now(self) -> datetime:
        raise NotImplementedError

    def _listing_view(self, path: str, org: str | None, items: list[Any]) -> list[Any]:
        raise NotImplementedError

    def _page(
        self, query: dict[str, str], items: list[Any], default_limit: int | None, path: str, org: str | None
    ) -> tuple[list[Any], dict]:
        """One page of a listing and its paging fields, as the config's server variant sends them."""
        offset = _int_param(query, "offset", 0) or 0
        limit = _int_param(query, "limit", 1)
        items = self._listing_view(path, org, items)
        if self.config.ignore_paging:
            return items, {}
        size = limit if limit is not None else default_limit
        if self.config.max_page_size is not None:
            size = self.config.max_page_size if size is None else min(size, self.config.max_page_size)
        if size is None:
            page, size = items[offset:], len(items)
        else:
            page = items[offset: offset + size]
        meta = {"count": len(items), "offset": offset, "limit": size}
        if self.config.echo_requested_limit and limit is not None:
            meta["limit"] = limit
        if self.config.omit_count:
            del meta["count"]
        if self.config.omit_paging_fields:
            meta = {}
        return page, meta

    def _org_or_404(self, org_id: str) -> Org:
        org = self.dataset.org(org_id)
        if org is None:
            raise ApiError(404, "not_found", f"organization {org_id!r} not found")
        return org

    def route(
        self, method: str, segments: list[str], query: dict[str, str], path: str | None = None,
        fault_org: str | None = None,
    ) -> Any:
        """Answer one authenticated API request with a JSON-able value (raises ApiError).

        ``path`` (the raw request path) and ``fault_org`` select the listing-change faults that apply.
        """
        path = path if path is not None else "/" + "/".join(segments)
        if segments[:2] == ["v2", "organizations"] and "v2" in self.config.apis:
            rest = segments[2:]
            if method != "GET":
                raise ApiError(405, "method_not_allowed", f"{method} is not supported here")
            if not rest:
                orgs = [org_listing_item(o, self.config.org_listing_ids) for o in self.dataset.orgs]
                page, meta = self._page(query, orgs, self.config.v2_default_limit, path, fault_org)
                return {"items": page, **meta}
            if len(rest) == 3 and rest[1:] == ["ncp", "profiles"]:
                org = self._org_or_404(rest[0])
                items = [self._profile_item(org, p) for p in org.profiles]
                page, meta = self._page(query, items, self.config.v2_default_limit, path, fault_org)
                return {"items": page, **meta}
            if len(rest) == 5 and rest[1:3] == ["ncp", "profiles"] and rest[4] == "usage":
                org = self._org_or_404(rest[0])
                profile = self.dataset.profile(org.org_id, rest[3])
                if profile is None:
                    raise ApiError(404, "not_found", f"profile {rest[3]!r} not found in organization {org.org_id!r}")
                start, end = _window(query, "start_time", "end_time")
                records = self._v2_usage(profile, start, end)
                page, meta = self._page(query, records, self.config.v2_default_limit, path, fault_org)
                return {"instance_usage_data": page, **meta}
        if (len(segments) == 9 and segments[:7] == PARTNER_SEGMENTS and segments[8] == "usage"
                and "partner" in self.config.apis):
            if method != "GET":
                raise ApiError(405, "method_not_allowed", f"{method} is not supported here")
            return self._partner_usage(segments[7], query, path, fault_org)
        raise ApiError(404, "not_found", "no such endpoint")

    @staticmethod
    def _profile_item(org: Org, profile: Profile) -> dict[str, Any]:
        return {
            "metadata": {"name": profile.name, "id": profile.profile_id or stable_uuid(org.org_id, profile.name)},
            "spec": {"type": profile.type, "variables": [dict(v) for v in profile.spec_variables]},
        }

    @staticmethod
    def _apply_overrides(record: dict[str, Any], instance: Instance, only: tuple[str, ...] | None) -> dict[str, Any]:
        for key, value in instance.record_overrides.items():
            if only is not None and key not in only:
                continue
            if value is REMOVE:
                record.pop(key, None)
            else:
                record[key] = value
        return record

    def _v2_usage(self, profile: Profile, start: datetime, end: datetime) -> list[dict[str, Any]]:
        records = []
        now = self.now()
        for instance, hours, (lo, hi) in usage_core(profile, start, end, now):
            if self.config.seed_fields_only:
                record = {"instance_name": instance.name, "usage_hours": hours_2dp(hours), "status": instance.status(now)}
                records.append(self._apply_overrides(record, instance, SEED_FIELDS))
                continue
            display = usage_display(hours)
            record = {
                "instance_name": instance.name,
                "instance_id": instance.instance_id,
                "status": instance.status(now),
                "usage_hours": hours_2dp(hours),
                "usage": display,
                "raw_usage": hours,
                "start_time": format_time(lo),
                "end_time": format_time(hi),
                "created_at": format_time(instance.created_at),
                "parameters": usage_parameters(profile, instance, hours, display),
            }
            records.append(self._apply_overrides(record, instance, None))
        return records

    def _partner_usage(self, kind: str, query: dict[str, str], path: str, fault_org: str | None) -> dict[str, Any]:
        if kind not in ("compute", "service"):
            raise ApiError(400, "bad_request", f"kind must be compute or service, got {kind!r}")
        start, end = _window(query, "range_from", "range_to")
        org_filter = query.get("instance_organization_id") or None
        records = partner_records(self.dataset, kind, start, end, self.now(), org_filter,
                                  lambda record, instance: self._apply_overrides(record, instance, None))
        page, meta = self._page(query, records, self.config.partner_default_limit, path, fault_org)
        return {
            "kind": kind,
            "partner_id": self.dataset.partner_id,
            "organization_id": self.dataset.organization_id,
            "instance_usage_data": page,
            **meta,
            "range_from": format_time(start),
            "range_to": format_time(end),
        }


__all__ = ["PARTNER_PREFIX", "ApiError", "ApiRoutes", "parse_time", "to_json"]
