"""Per-org API tokens of the tenant statements API: made and revoked by an operator (the writer's login),
checked by the service (its own role).

A token reads ``rbt_<token_id>_<secret>``: ``token_id`` (12 lower-case letters and digits) is the public
lookup key, ``secret`` 32 random bytes in base64url. Only ``scrypt(secret, salt)`` with a per-token random
salt is stored (``billing.api_tokens``), so the database never holds a usable token; the token is shown
once, when it is made. Checking compares digests in constant time, and an unknown token id costs the same
scrypt as a known one, so the answer's timing does not tell which ids exist.

Creation and revocation are written to ``billing.audit_log`` in the same transaction.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import string
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rafay_billing.db import sql, transaction

PREFIX = "rbt"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
KDF = f"scrypt:n={SCRYPT_N},r={SCRYPT_R},p={SCRYPT_P}"
_KDF_RE = re.compile(r"^scrypt:n=(\d+),r=(\d+),p=(\d+)$")
_TOKEN_RE = re.compile(r"^rbt_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")
_ID_ALPHABET = string.ascii_lowercase + string.digits
_DUMMY_SALT = b"\x00" * 16
MAX_TOKEN_LENGTH = 128


class TokenError(ValueError):
    """A token operation was refused: the message says what to do."""


@dataclass(frozen=True)
class IssuedToken:
    token_id: str
    org_id: str
    token: str  # shown once, never stored
    expires_at: datetime | None


@dataclass(frozen=True)
class TokenInfo:
    token_id: str
    org_id: str
    label: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    last_used_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.__dict__.items()}


def _scrypt(secret: str, salt: bytes, kdf: str = KDF) -> bytes:
    match = _KDF_RE.match(kdf)
    if not match:
        raise TokenError(f"unknown key derivation {kdf!r}")
    n, r, p = (int(g) for g in match.groups())
    if not (2 <= n <= 2**20 and 1 <= r <= 32 and 1 <= p <= 16):
        raise TokenError(f"key derivation parameters out of range: {kdf!r}")
    return hashlib.scrypt(secret.encode("ascii"), salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32)


def parse_token(token: str) -> tuple[str, str] | None:
    """``(token_id, secret)`` of a well-formed token, else None (never raises on any input)."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        return None
    match = _TOKEN_RE.match(token)
    return (match.group(1), match.group(2)) if match else None


def new_token() -> tuple[str, str, str]:
    """A fresh ``(token, token_id, secret)``."""
    token_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("=")
    return f"{PREFIX}_{token_id}_{secret}", token_id, secret


# --- the operator's side (the writer's login) --------------------------------------------------------


def create_token(conn: Any, org_id: str, actor: str, *, expires_at: datetime | None = None,
                 label: str = "") -> IssuedToken:
    """Make a token for ``org_id``; the returned :class:`IssuedToken` holds the only copy of the token."""
    from psycopg.types.json import Jsonb

    org_id = (org_id or "").strip()
    if not org_id or "\x00" in org_id:
        raise TokenError("give the org id (--org) the token is for")
    if "\x00" in label:
        raise TokenError("--label must not contain NUL characters")
    token, token_id, secret = new_token()
    salt = secrets.token_bytes(16)
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("tenant_api/insert_token.sql"), {
            "token_id": token_id, "org_id": org_id, "secret_hash": _scrypt(secret, salt), "salt": salt,
            "kdf": KDF, "label": label, "created_by": actor, "expires_at": expires_at,
        })
        if cur.fetchone() is None:
            raise TokenError(f"--expires {expires_at} is not after now: give a future time")
        cur.execute(sql("audit/record.sql"), {
            "action": "tenant_token_create", "actor": actor, "period_start": None, "org_id": org_id,
            "usage_date": None,
            "detail": Jsonb({"token_id": token_id, "label": label,
                             "expires_at": expires_at.isoformat() if expires_at else None}),
        })
    return IssuedToken(token_id, org_id, token, expires_at)


def revoke_token(conn: Any, token_id: str, actor: str) -> TokenInfo:
    """Revoke a token (by its id, or the whole token); refused when unknown or already revoked."""
    from psycopg.types.json import Jsonb

    parsed = parse_token(token_id)
    token_id = parsed[0] if parsed else token_id.strip()
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("tenant_api/revoke_token.sql"), {"token_id": token_id, "actor": actor})
        row = cur.fetchone()
        if row is None:
            cur.execute(sql("tenant_api/token_info.sql"), {"token_id": token_id})
            existing = cur.fetchone()
            if existing is None:
                raise TokenError(f"no API token {token_id!r} (see rafay-billing tenant-token list)")
            info = TokenInfo(*existing)
            raise TokenError(f"API token {token_id} was already revoked at {info.revoked_at} by {info.revoked_by}")
        info = TokenInfo(*row)
        cur.execute(sql("audit/record.sql"), {
            "action": "tenant_token_revoke", "actor": actor, "period_start": None, "org_id": info.org_id,
            "usage_date": None, "detail": Jsonb({"token_id": token_id}),
        })
    return info


def org_known(conn: Any, org_id: str) -> bool:
    """Whether a run listed ``org_id`` or it was invoiced (a token for a mistyped org would see nothing)."""
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("tenant_api/org_known.sql"), {"org_id": org_id})
        row = cur.fetchone()
    return bool(row and row[0])


def list_tokens(conn: Any, org_id: str | None = None) -> list[TokenInfo]:
    """Every token (of ``org_id``), newest first: ids and dates, never a secret or a hash."""
    with transaction(conn), conn.cursor() as cur:
        cur.execute(sql("tenant_api/list_tokens.sql"), {"org_id": org_id})
        return [TokenInfo(*row) for row in cur.fetchall()]


# --- the service's side (the tenant API role) ---------------------------------------------------------


class TokenChecker:
    """Checks presented tokens against ``billing.api_tokens`` and records their use.

    A digest that verified once is remembered (per token id, as SHA-256 of the presented secret and the
    stored hash) so scrypt runs once per token and process, not on every request; the row is still read
    on every request, so a revocation or an expiry takes effect at once.
    """

    def __init__(self) -> None:
        self._verified: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def _matches(self, token_id: str, secret: str, row: tuple[Any, ...] | None) -> bool:
        if row is None:
            _scrypt(secret, _DUMMY_SALT)  # the same work as for a known id
            return False
        stored, salt, kdf = bytes(row[1]), bytes(row[2]), row[3]
        memo = hashlib.sha256(secret.encode("ascii") + b"\x00" + stored).digest()
        with self._lock:
            known = self._verified.get(token_id)
        if known is not None and hmac.compare_digest(known, memo):
            return True
        if not hmac.compare_digest(_scrypt(secret, salt, kdf), stored):
            return False
        with self._lock:
            self._verified[token_id] = memo
        return True

    def authenticate(self, conn: Any, token: str | None) -> tuple[str, str] | None:
        """``(org_id, token_id)`` of a valid, unrevoked, unexpired token (its last use is recorded), else None."""
        parsed = parse_token(token or "")
        if parsed is None:
            _scrypt("x" * 43, _DUMMY_SALT)
            return None
        token_id, secret = parsed
        with transaction(conn), conn.cursor() as cur:
            cur.execute(sql("tenant_api/find_token.sql"), {"token_id": token_id})
            row = cur.fetchone()
            if not self._matches(token_id, secret, row):
                return None
            assert row is not None
            org_id, usable = row[0], row[4]
            if not usable:  # revoked or expired: the same answer as a wrong token
                return None
            cur.execute(sql("tenant_api/touch_token.sql"), {"token_id": token_id})
        return org_id, token_id
