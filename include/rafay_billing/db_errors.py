"""A database error as the ``rafay-billing`` commands print it: one line, what to do, no password.

Why a module of its own: libpq quotes the connection string it could not parse (``missing "=" after
"user:secret@host/db"``, ``invalid percent-encoded token: "secret%zz"``), so a DSN typed with one
character wrong would print its password; and PostgreSQL adds context lines (``LINE 3: ...``, ``Is the
server running on that host ...``) that make a one-line error several. Every command that takes a
DSN prints its database errors through :func:`database_error_line`. No psycopg import: the commands
that never touch a database stay light.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

MASK = "***"

_URL_PASSWORD = re.compile(r"^\s*[A-Za-z][A-Za-z0-9+.-]*://[^:/@]*:(?P<pw>.*)@[^@/]*(?:/.*)?$", re.DOTALL)
_BARE_PASSWORD = re.compile(r"^\s*[^\s:/@=]+:(?P<pw>.*)@[^@]*$", re.DOTALL)  # "user:pw@host/db", no scheme
_KEYWORD_PASSWORD = re.compile(r"""(?:^|\s)password\s*=\s*(?P<pw>'(?:[^'\\]|\\.)*'|\S+)""", re.IGNORECASE)
_USERINFO = re.compile(r"(?P<user>[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@\"']*:)[^\s@\"']*@")

_MISSING_SCHEMA = ("UndefinedTable", "UndefinedFunction", "InvalidSchemaName")


def dsn_passwords(dsn: str | None) -> list[str]:
    """The password(s) a connection string may hold, as written and percent-decoded (the longest first)."""
    if not dsn:
        return []
    found: list[str] = []
    match = _URL_PASSWORD.match(dsn) if "://" in dsn else _BARE_PASSWORD.match(dsn)
    if match and match.group("pw"):
        found.append(match.group("pw"))
    found += [m.group("pw").strip("'") for m in _KEYWORD_PASSWORD.finditer(dsn)]
    found += [unquote(pw) for pw in found]
    return sorted({pw for pw in found if pw}, key=len, reverse=True)


def mask_dsn_secrets(text: str, *dsns: str | None) -> str:
    """``text`` with the DSNs' passwords masked wherever they appear, and any ``scheme://user:…@`` password."""
    secrets = sorted({pw for dsn in dsns for pw in dsn_passwords(dsn)}, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, MASK)
    return _USERINFO.sub(lambda m: m.group("user") + MASK + "@", text)


def database_error_line(exc: BaseException, *dsns: str | None) -> str:
    """The error's first line, the passwords of ``dsns`` (the ones the command may have used) masked;
    for a database without the billing schema, what to run."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = mask_dsn_secrets(lines[0] if lines else type(exc).__name__, *dsns)
    if type(exc).__name__ in _MISSING_SCHEMA:
        text += (" - is this the billing database, migrated? Apply the schema with the DAG's migrate_schema "
                 "task or `python -m rafay_billing.db migrate --dsn ...`")
    return text
