"""Data model, deterministic generator and usage arithmetic of the Rafay simulator.

Everything here is pure (no I/O, no clock): the server turns it into JSON. Lifetimes in generated
data sit on a 9-second grid and ``now`` is floored to it, so usage in hours (seconds / 3600) is an
exact decimal with at most 4 places and consecutive windows add up exactly to the window that
spans them - which is what billing tests need to assert without tolerances.
"""

from __future__ import annotations

import hashlib
import random
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Any

GRID_SECONDS = 9
"""Lifetimes and ``now`` are multiples of this (3600 / 9 = 400 = 2**4 * 5**2: exact 4-place hours)."""

LIFETIME_START = datetime(2026, 10, 1, tzinfo=UTC)
LIFETIME_END = datetime(2026, 12, 31, tzinfo=UTC)


class _Remove:
    """Sentinel type: an override value that deletes the field from the usage record."""

    _instance: _Remove | None = None

    def __new__(cls) -> _Remove:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "REMOVE"

    def __reduce__(self) -> str:
        return "REMOVE"


REMOVE = _Remove()
"""Use as a ``record_overrides`` value to drop that field from the instance's usage records."""

_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


class RawNumber(str):
    """A JSON number written into responses exactly as given, e.g. ``RawNumber("1E+200000")``.

    Why: a ``Decimal`` is written in plain notation, so it cannot reproduce what a real server may
    send (``1E+200000``, ``1E+40``, a 400-digit integer); use this as a ``record_overrides`` value
    to test the client's parsing of such literals. Only valid JSON number syntax is accepted.
    """

    def __new__(cls, text: str) -> RawNumber:
        if not _JSON_NUMBER.fullmatch(text):
            raise ValueError(f"not a JSON number literal: {text!r}")
        return super().__new__(cls, text)


def as_utc(value: datetime) -> datetime:
    """Return ``value`` as an aware UTC datetime (naive values are taken to be UTC already)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def floor_to_grid(value: datetime) -> datetime:
    """Floor to the 9-second grid so that clipping to ``now`` keeps hours exact."""
    value = as_utc(value)
    epoch = int(value.timestamp() // 1)
    return datetime.fromtimestamp(epoch - epoch % GRID_SECONDS, UTC)


def format_time(value: datetime) -> str:
    """RFC 3339 UTC, second precision, ``Z`` suffix - the only form the API uses."""
    return as_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Instance:
    """One instance (VM, pod, service) of a profile; status derives from the timestamps.

    ``segments`` are the instance's running intervals (``(start, end)``, end None = still running)
    when it was stopped and started again: each one the window overlaps is listed as a usage record
    of its own (same ``instance_id``, its own ``start_time``/``end_time`` and hours), which is how a
    stop/start shows up in the API. Empty = one interval, ``created_at`` to the stop or deletion.
    ``copies`` > 1 lists every record of the instance that many times, identically (exact
    duplicates, a server-side glitch billing must drop once and not more). ``labels`` are billing
    labels of this instance (``Contract ID``, ``Client ID``), reported as label parameters after
    its profile's; ``missing_parameters`` names parameters its records leave out.
    """

    instance_id: str
    name: str
    created_at: datetime
    stopped_at: datetime | None = None
    deleted_at: datetime | None = None
    record_overrides: dict[str, Any] = field(default_factory=dict, hash=False)
    project: str = "default"
    segments: tuple[tuple[datetime, datetime | None], ...] = ()
    copies: int = 1
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    missing_parameters: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for attr in ("created_at", "stopped_at", "deleted_at"):
            value = getattr(self, attr)
            if value is not None:
                object.__setattr__(self, attr, as_utc(value))
        segments = tuple((as_utc(lo), None if hi is None else as_utc(hi)) for lo, hi in self.segments)
        for pos, (lo, hi) in enumerate(segments):
            if hi is not None and hi <= lo:
                raise ValueError(f"instance {self.name}: segment {pos} ends before it starts")
            if pos and (segments[pos - 1][1] is None or segments[pos - 1][1] > lo):
                raise ValueError(f"instance {self.name}: segments must be in order and must not overlap")
        object.__setattr__(self, "segments", segments)
        if self.copies < 1:
            raise ValueError(f"instance {self.name}: copies must be at least 1")

    @property
    def ended_at(self) -> datetime | None:
        """When usage stops accruing: the stop, else the deletion, else never."""
        return self.stopped_at or self.deleted_at

    def running_intervals(self) -> tuple[tuple[datetime, datetime | None], ...]:
        """``segments`` if given, else the one interval from creation to the stop or deletion."""
        return self.segments or ((self.created_at, self.ended_at),)

    def status(self, now: datetime) -> str:
        """"deleted" / "stopped" / "running" as seen at ``now`` (events after ``now`` have not happened)."""
        now = floor_to_grid(now)
        if self.deleted_at is not None and self.deleted_at <= now:
            return "deleted"
        if self.stopped_at is not None and self.stopped_at <= now:
            return "stopped"
        return "running"


@dataclass(frozen=True)
class Profile:
    """A compute or service profile (SKU) of an org, with its instances in stable order.

    ``gpu_param`` is the GPU count reported in usage ``parameters`` (None = not reported there);
    ``spec_variables`` is what the profile listing shows; ``labels`` are the other billing
    dimensions reported as label parameters (CPU, Memory as numbers; ServiceID as text), and
    ``quantities`` the quantitative ones (``{"Disk": 100}``: 100 GB, reported as ``raw_usage`` =
    100 x hours, the documented GB-hours shape).
    """

    name: str
    type: str
    gpu_param: int | None
    spec_variables: list[dict[str, str]] = field(default_factory=list, hash=False)
    instances: list[Instance] = field(default_factory=list, hash=False)
    profile_id: str = ""
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    quantities: dict[str, Decimal] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Org:
    """A tenant organization: ``org_id`` is ``metadata.name`` (used in paths), ``name`` the display name.

    ``uid`` is its id in the partner billing API (``instance_organization_id``); blank = ``org_id``.
    ``partner_name`` is the display name the partner API reports for it
    (``instance_organization_name``); blank = ``name``. Set it to another case, other spaces or an
    old name to reproduce a console whose two APIs disagree on the name (a rename).
    """

    org_id: str
    name: str
    profiles: list[Profile] = field(default_factory=list, hash=False)
    uid: str = ""
    partner_name: str = ""

    @property
    def partner_id(self) -> str:
        return self.uid or self.org_id

    @property
    def partner_display_name(self) -> str:
        return self.partner_name or self.name


@dataclass
class Dataset:
    """All orgs in listing order; the server reads it, never mutates it."""

    orgs: list[Org]
    partner_id: str = "019a0000-0000-7000-8000-00000000cafe"
    organization_id: str = "defaorg"

    def __post_init__(self) -> None:
        self._orgs = {org.org_id: org for org in self.orgs}
        self._profiles = {(org.org_id, p.name): p for org in self.orgs for p in org.profiles}

    def org(self, org_id: str) -> Org | None:
        """The org with this ``metadata.name`` or None."""
        return self._orgs.get(org_id)

    def profile(self, org_id: str, name: str) -> Profile | None:
        """The profile ``name`` of org ``org_id`` or None."""
        return self._profiles.get((org_id, name))

    def iter_instances(self) -> Iterator[tuple[Org, Profile, Instance]]:
        """Every instance with its org and profile, in API order."""
        for org in self.orgs:
            for profile in org.profiles:
                for instance in profile.instances:
                    yield org, profile, instance

    @classmethod
    def generate(
        cls,
        seed: int = 7,
        orgs: int = 30,
        profiles_per_org: tuple[int, int] = (2, 6),
        instances_per_profile: tuple[int, int] = (1, 8),
        anomalies: bool = False,
    ) -> Dataset:
        """Build a varied, deterministic dataset from ``seed`` (same seed -> same data, always).

        ``anomalies`` adds a few instances whose usage records carry invalid values (negative,
        non-numeric, missing) so the pipeline's exception handling can be exercised.
        """
        return _Generator(seed, anomalies).build(orgs, profiles_per_org, instances_per_profile)


# --- usage arithmetic -------------------------------------------------------------------------


def usage_segments(
    instance: Instance, start: datetime, end: datetime, now: datetime
) -> list[tuple[datetime, datetime]]:
    """The instance's running intervals clipped to [start, end) and to ``now`` (non-empty ones, in order).

    ``now`` is floored to the 9-second grid first (usage accrues in whole grid steps).
    """
    clip_hi = min(as_utc(end), floor_to_grid(now))
    out = []
    for run_lo, run_hi in instance.running_intervals():
        lo = max(run_lo, instance.created_at, as_utc(start))
        hi = clip_hi
        for limit in (run_hi, instance.ended_at):
            if limit is not None:
                hi = min(hi, limit)
        if hi > lo:
            out.append((lo, hi))
    return out


def usage_seconds(instance: Instance, start: datetime, end: datetime, now: datetime) -> int:
    """Seconds the instance ran inside [start, end) and before ``now`` (summed over its segments)."""
    return sum(int((hi - lo).total_seconds()) for lo, hi in usage_segments(instance, start, end, now))


def usage_interval(
    instance: Instance, start: datetime, end: datetime, now: datetime
) -> tuple[datetime, datetime] | None:
    """The clipped span (first start, last end) reported for an unsegmented instance, or None when empty."""
    spans = usage_segments(instance, start, end, now)
    return (spans[0][0], spans[-1][1]) if spans else None


_SIX_PLACES = Decimal("0.000001")


def hours_decimal(seconds: int) -> Decimal:
    """Exact hours for grid-aligned seconds; otherwise rounded to 6 places like the real API."""
    if seconds % GRID_SECONDS == 0:
        return (Decimal(seconds) / 3600).normalize()
    return (Decimal(seconds) / 3600).quantize(_SIX_PLACES, rounding=ROUND_HALF_EVEN).normalize()


def hours_2dp(hours: Decimal) -> Decimal:
    """``usage_hours``: half-up to 2 decimals."""
    return hours.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def usage_display(hours: Decimal) -> str:
    """The display string of ``usage``, e.g. ``"20.59h"``."""
    return f"{hours_2dp(hours):.2f}h"


def stable_id(*parts: str, length: int = 7) -> str:
    """A short lowercase alphanumeric id derived from ``parts`` (project ids, fallback ids)."""
    digest = int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest(), "big")
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    out = []
    for _ in range(length):
        digest, index = divmod(digest, len(alphabet))
        out.append(alphabet[index])
    return "".join(out)


def stable_uuid(*parts: str) -> str:
    """A UUIDv7-looking id derived from ``parts`` (used when a profile has no explicit id)."""
    digest = int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:16], "big")
    return str(_uuid7_from(1_769_000_000_000, digest))


def _uuid7_from(unix_ms: int, random_bits: int) -> uuid.UUID:
    value = (unix_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((random_bits >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= random_bits & ((1 << 62) - 1)
    return uuid.UUID(int=value)


# --- generator --------------------------------------------------------------------------------

# Display names: the first ten cover every awkward case, so even small datasets have them.
_ORG_NAMES = [
    "Coke",
    "Acme Corp.",
    "O'Brien & Sons",
    "Zürich GPU, AG",
    "数据 Labs",
    '"Quoted" Co',
    "=cmd|' /C calc'!A0",
    "Pepsi",
    "../etc",
    "a/b",
    "Goodlife",
    "Northwind Traders",
    "Initech",
    "Globex Corporation",
    "Umbrella Research; Ltd",
    "Stark Industries",
    "Wayne Enterprises",
    "Café Olé",
    "Tyrell Corp",
    "Hooli",
    "Cyberdyne Systems",
    "Soylent, Inc.",
    "Wonka Industries",
    "Aperture Science",
    "Μέδουσα AI",
    "Kraków Compute Sp. z o.o.",
    "Massive Dynamic",
    "Vandelay Industries",
    "  Leading Space Ltd",
    "Ørsted Compute ApS",
    "+SUM(1+1)",
    "Oscorp",
    "München Rechenzentrum",
    "Nakatomi Trading",
    "Pied Piper",
    "🚀 Rocket GPUs",
]

# name, type, GPU count in usage parameters, profile spec variables, other parameter labels
_PROFILES: list[tuple[str, str, int | None, list[dict[str, str]], dict[str, str]]] = [
    ("h100-8gpu-vm", "compute", 8, [{"name": "gpu", "value": "8"}, {"name": "cpu", "value": "96"}],
     {"CPU": "96", "Memory": "1024", "Disk": "2000"}),
    ("managed-developer-pods-v2", "service", None, [{"name": "cpu", "value": "4"}],
     {"CPU": "4", "Memory": "16", "ServiceID": "svc-devpods"}),
    ("l40s-4gpu-vm", "compute", None, [{"name": "Guest GPU Count", "value": "4"},
                                       {"name": "Guest CPU Count", "value": "48"}],
     {"CPU": "48", "Memory": "384", "Disk": "1000"}),
    ("openwebui", "service", None, [],
     {"CPU": "2", "Memory": "8", "ServiceID": "svc-openwebui"}),
    ("a100-small-vm", "compute", 1, [{"name": "gpu", "value": "1"}],
     {"CPU": "12", "Memory": "96", "Disk": "500"}),
    ("slurm-k8s", "compute", None, [{"name": "gpu", "value": "8"}, {"name": "nodes", "value": "2"}],
     {"CPU": "192", "Memory": "2048", "Disk": "4000"}),
    ("unsloth-finetune", "service", 1, [{"name": "gpu", "value": "1"}],
     {"CPU": "8", "Memory": "64", "ServiceID": "svc-unsloth"}),
    ("h100-small-vm", "compute", 1, [],
     {"CPU": "24", "Memory": "240", "Disk": "1000"}),
    ("jupyter-notebooks", "service", None, [{"name": "cpu", "value": "2"}],
     {"CPU": "2", "Memory": "8", "ServiceID": "svc-jupyter"}),
    ("a100-80g-2gpu-vm", "compute", 2, [{"name": "Guest GPU Count", "value": "2"}],
     {"CPU": "32", "Memory": "256", "Disk": "1000"}),
    ("cpu-general-vm", "compute", None, [{"name": "cpu", "value": "16"}],
     {"CPU": "16", "Memory": "64", "Disk": "200"}),
    ("vllm-inference", "service", None, [{"name": "Guest GPU Count", "value": "1"}],
     {"CPU": "8", "Memory": "48", "ServiceID": "svc-vllm"}),
]

_INSTANCE_BASES = {
    "compute": ["dev-vm", "train-llama", "nvidia-h100-8gpu-vm", "test-abc", "test-mohan", "bench", "ft-job",
                "research-box", "ci-runner"],
    "service": ["demo-serverless-pod", "lan-openwebui", "team-pod", "notebook", "api-gateway", "eval-svc",
                "test-abc"],
}
_PROJECTS = ["default", "development", "production", "research"]
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_DAY = 86_400


class _Generator:
    def __init__(self, seed: int, anomalies: bool) -> None:
        self.rng = random.Random(seed)
        self.anomalies = anomalies
        self.used_org_ids: set[str] = set()
        self.anomaly_cycle = 0

    def build(self, orgs: int, profiles_per_org: tuple[int, int], instances_per_profile: tuple[int, int]) -> Dataset:
        rng = self.rng
        result = []
        for index in range(orgs):
            name = _ORG_NAMES[index] if index < len(_ORG_NAMES) else f"Tenant {index + 1:03d}"
            org_id = self._org_id()
            count = rng.randint(*profiles_per_org)
            # The first profile rotates through the pool so every kind shows up even in small datasets.
            first = _PROFILES[index % len(_PROFILES)]
            others = [p for p in _PROFILES if p is not first]
            chosen = [first, *rng.sample(others, min(max(count - 1, 0), len(others)))]
            projects = _PROJECTS[: rng.randint(1, len(_PROJECTS))]
            profiles = [
                self._profile(org_id, spec, projects, instances_per_profile, recreate=(index == 0 and pos == 0))
                for pos, spec in enumerate(chosen[: max(count, 0)])
            ]
            result.append(Org(org_id=org_id, name=name, profiles=profiles))
        return Dataset(orgs=result, partner_id=str(self._uuid7(datetime(2025, 6, 1, tzinfo=UTC))),
                       organization_id=self._org_id())

    def _org_id(self) -> str:
        while True:
            candidate = "".join(self.rng.choice(_ID_ALPHABET) for _ in range(7))
            if candidate not in self.used_org_ids:
                self.used_org_ids.add(candidate)
                return candidate

    def _uuid7(self, when: datetime) -> uuid.UUID:
        return _uuid7_from(int(when.timestamp() * 1000) + self.rng.randrange(1000), self.rng.getrandbits(74))

    def _profile(self, org_id: str, spec: tuple, projects: list[str], per_profile: tuple[int, int],
                 recreate: bool) -> Profile:
        name, kind, gpu, variables, labels = spec
        rng = self.rng
        profile_id = str(self._uuid7(datetime(2026, 2, 1, tzinfo=UTC) + timedelta(days=rng.randrange(200))))
        bases = _INSTANCE_BASES[kind]
        instances: list[Instance] = []
        used_names: set[str] = set()
        for i in range(rng.randint(*per_profile)):
            base = rng.choice(bases)
            inst_name = base if base not in used_names and rng.random() < 0.4 else f"{base}-{i + 1}"
            while inst_name in used_names:
                inst_name += "x"
            used_names.add(inst_name)
            project = rng.choice(projects)
            first = self._instance(inst_name, project, force_delete=recreate and i == 0)
            instances.append(first)
            if first.deleted_at is not None and (recreate and i == 0 or rng.random() < 0.25):
                # Recreated: same name, new id, created at or after the deletion.
                gap = rng.choice([0, 0, 9 * rng.randrange(1, 400), _DAY + 9 * rng.randrange(2000)])
                created = first.deleted_at + timedelta(seconds=gap)
                if created < LIFETIME_END:
                    instances.append(self._instance(inst_name, project, created=created))
        # Disk is quantitative (GB x hours, the documented shape); every other compute instance carries
        # a Contract ID billing label. Both derive from names, not the generator's random stream, so
        # the hours, ids and lifetimes of a seed stay what they were.
        quantities = {k: Decimal(v) for k, v in labels.items() if k == "Disk"}
        instances = [
            replace(inst, labels={"Contract ID": "C-" + stable_id(org_id, inst.name, length=4).upper()})
            if kind == "compute" and pos % 2 == 0 else inst
            for pos, inst in enumerate(instances)
        ]
        return Profile(name=name, type=kind, gpu_param=gpu, spec_variables=[dict(v) for v in variables],
                       instances=instances, profile_id=profile_id,
                       labels={k: v for k, v in labels.items() if k not in quantities}, quantities=quantities)

    def _grid_time(self, lo: datetime, hi: datetime) -> datetime:
        """A random grid-aligned instant in [lo, hi); sometimes exactly midnight or on the hour."""
        span = int((hi - lo).total_seconds())
        offset = self.rng.randrange(max(span, 1))
        shape = self.rng.random()
        if shape < 0.1:
            offset -= offset % _DAY
        elif shape < 0.25:
            offset -= offset % 3600
        moment = lo + timedelta(seconds=offset)
        return floor_to_grid(moment) if floor_to_grid(moment) >= lo else lo

    def _instance(self, name: str, project: str, created: datetime | None = None,
                  force_delete: bool = False) -> Instance:
        rng = self.rng
        if created is None:
            # A forced deletion happens early enough that the re-creation is visible by late November.
            latest = datetime(2026, 11, 10, tzinfo=UTC) if force_delete else LIFETIME_END - timedelta(days=1)
            created = self._grid_time(LIFETIME_START, latest)
        kind = rng.random()
        if kind < 0.25:  # short: 9 s .. 6 h
            duration = 9 * rng.randrange(1, 2400)
        elif kind < 0.5 or force_delete:  # medium: 6 h .. 36 h
            duration = 9 * rng.randrange(2400, 14400)
        else:  # several days: 1 .. 21 days
            duration = 9 * rng.randrange(9600, 201600)
        end = created + timedelta(seconds=duration)
        fate = rng.random()
        stopped = deleted = None
        if end >= LIFETIME_END:
            pass  # still running when the generated period ends
        elif force_delete or fate >= 0.65:
            if rng.random() < 0.4 and not force_delete:
                stopped = end
                deleted = end + timedelta(seconds=9 * rng.randrange(1, 20000))
                if deleted >= LIFETIME_END:
                    deleted = None
            else:
                deleted = end
        elif fate >= 0.3:
            stopped = end
        created_ms = created + timedelta(milliseconds=rng.randrange(1000))
        return Instance(
            instance_id=str(self._uuid7(created_ms)),
            name=name,
            created_at=created,
            stopped_at=stopped,
            deleted_at=deleted,
            record_overrides=self._anomaly(),
            project=project,
        )

    def _anomaly(self) -> dict[str, Any]:
        if not self.anomalies or self.rng.random() >= 0.04:
            return {}
        self.anomaly_cycle += 1
        choice = self.anomaly_cycle % 3
        if choice == 0:
            return {"raw_usage": Decimal("-3"), "usage_hours": Decimal("-3"), "usage": "-3.00h"}
        if choice == 1:
            return {"raw_usage": "abc", "usage_hours": "abc", "usage": "abch"}
        return {"raw_usage": REMOVE, "usage_hours": REMOVE, "usage": REMOVE}
