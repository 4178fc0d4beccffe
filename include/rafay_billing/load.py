"""Land one org's usage CSV in ``billing.usage_records`` with COPY, replacing that org's rows for the window.

Why COPY: it streams the file to the server in one command (hundreds of thousands of rows a second)
where row-by-row INSERTs pay a round trip and a statement per row. Why delete-then-COPY in one
transaction: re-running or clearing an org's task must replace its rows, never add to them, and a
failure half-way must leave the previous rows in place.
"""

from __future__ import annotations

import csv
import io
from typing import IO, Any

from rafay_billing.db import sql, transaction
from rafay_billing.usage import USAGE_COLUMNS
from rafay_billing.window import Window

CHUNK_SIZE = 1 << 20


class LoadError(RuntimeError):
    """A usage CSV cannot be landed as asked (wrong header, rows for another org or window, bad cells)."""


def _as_stream(source: str | bytes | IO[Any]) -> IO[Any]:
    if isinstance(source, str):
        return io.StringIO(source, newline="")
    if isinstance(source, bytes | bytearray | memoryview):
        return io.BytesIO(bytes(source))
    return source


def _as_bytes(chunk: str | bytes) -> bytes:
    return chunk.encode("utf-8") if isinstance(chunk, str) else chunk


def _check_header(first_line: bytes, org_id: str) -> None:
    """The header must be exactly the normalised usage columns, in order, so no cell lands in the wrong column."""
    text = first_line.decode("utf-8", errors="replace").removeprefix("\ufeff")
    header = next(csv.reader([text]), []) if text.strip() else []
    if tuple(header) != USAGE_COLUMNS:
        raise LoadError(
            f"usage CSV for org {org_id!r} has header {header!r}; expected {','.join(USAGE_COLUMNS)}"
        )


def load_org_usage(
    conn: Any, window: Window, org_id: str, source: str | bytes | IO[Any], run_id: str
) -> int:
    """Replace ``org_id``'s landed usage for ``window`` with the rows of ``source``; returns rows loaded.

    ``source`` is the per-org usage CSV (header + rows, ``docs/design.md`` columns): a binary or text
    file object (read in chunks, never whole) or the CSV as ``str``/``bytes``. Every row must belong to
    ``org_id`` and ``window``; otherwise nothing changes and :class:`LoadError` says why.
    """
    import psycopg  # noqa: PLC0415 - keep module import light for the CLI

    stream = _as_stream(source)
    first = _as_bytes(stream.readline())
    _check_header(first, org_id)
    params = {"window_start": window.start, "window_end": window.end, "org_id": org_id}
    lock_key = f"usage|{window.start_iso}|{window.end_iso}|{org_id}"
    where = f"org {org_id!r}, window [{window.start_iso}, {window.end_iso})"
    try:
        with transaction(conn), conn.cursor() as cur:
            cur.execute(sql("load/lock.sql"), {"lock_key": lock_key})
            cur.execute(sql("load/set_run_id.sql"), {"run_id": run_id})
            cur.execute(sql("load/delete_org_window.sql"), params)
            with cur.copy(sql("load/copy_usage.sql")) as copy:
                copy.write(first)
                while chunk := stream.read(CHUNK_SIZE):
                    copy.write(_as_bytes(chunk))
            loaded = cur.rowcount
            cur.execute(sql("load/count_org_window.sql"), params)
            landed = cur.fetchone()[0]
            if landed != loaded:
                raise LoadError(
                    f"usage CSV for {where}: {loaded - landed} of {loaded} rows belong to another "
                    "organization or window; nothing was loaded"
                )
    except psycopg.errors.UniqueViolation as exc:
        raise LoadError(
            f"usage CSV for {where} repeats a record (same window, org and record_seq) or holds rows of another "
            f"organization or window; nothing was loaded ({exc.diag.message_detail or exc})"
        ) from None
    except (psycopg.DataError, psycopg.IntegrityError) as exc:
        raise LoadError(
            f"usage CSV for {where} has a bad cell; nothing was loaded: {exc.diag.message_primary} "
            f"({exc.diag.context or 'no context'})"
        ) from None
    return loaded

