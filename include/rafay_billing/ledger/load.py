"""Land one (org, UTC day)'s usage CSV in ``billing.usage_records`` with COPY, replacing this run's rows for it.

Why COPY: it streams the file to the server in one command (hundreds of thousands of rows a second)
where row-by-row INSERTs pay a round trip and a statement per row. Why delete-then-COPY in one
transaction: retrying or clearing an org's task must replace its rows, never add to them, and a
failure half-way must leave the previous rows in place. Rows are kept per run (other runs' usage of
the day stays, for audit); rating reads the rows of the run it rates.
"""

from __future__ import annotations

import csv
import io
from typing import IO, Any

from rafay_billing.db import sql, transaction
from rafay_billing.errors import LoadError
from rafay_billing.source.usage import LEGACY_USAGE_COLUMNS, USAGE_COLUMNS
from rafay_billing.window import Window

CHUNK_SIZE = 1 << 20


def _as_stream(source: str | bytes | IO[Any]) -> IO[Any]:
    if isinstance(source, str):
        return io.StringIO(source, newline="")
    if isinstance(source, bytes | bytearray | memoryview):
        return io.BytesIO(bytes(source))
    return source


def _as_bytes(chunk: str | bytes) -> bytes:
    return chunk.encode("utf-8") if isinstance(chunk, str) else chunk


def _check_header(first_line: bytes, org_id: str) -> str:
    """The header must be exactly the normalised usage columns, in order, so no cell lands in the wrong column.

    Returns the COPY statement for it: a CSV landed before dimensions and labels existed (its header
    is ``LEGACY_USAGE_COLUMNS``) still loads, with no dimensions and no labels.
    """
    text = first_line.decode("utf-8", errors="replace").removeprefix("\ufeff")
    header = tuple(next(csv.reader([text]), []) if text.strip() else [])
    if header == USAGE_COLUMNS:
        return sql("load/copy_usage.sql")
    if header == LEGACY_USAGE_COLUMNS:
        return sql("load/copy_usage_legacy.sql")
    raise LoadError(
        f"usage CSV for org {org_id!r} has header {list(header)!r}; expected {','.join(USAGE_COLUMNS)}"
    )


def load_org_usage(
    conn: Any,
    window: Window,
    org_id: str,
    source: str | bytes | IO[Any],
    run_id: str,
    *,
    source_dir: str | None = None,
    extraction_seq: int | None = None,
) -> int:
    """Replace this run's landed usage of ``org_id`` for one UTC day with the rows of ``source``.

    ``window`` must be exactly one UTC day (the ledger's unit is (org, day)). ``source`` is the usage
    CSV of that (org, day) (header + rows, ``USAGE_COLUMNS``): a binary or text file object (read in
    chunks, never whole) or the CSV as ``str``/``bytes``. ``source_dir`` is where the raw pages the
    rows point at (``source_page``) were landed. Every row must belong to ``org_id`` and that day;
    otherwise nothing changes and :class:`LoadError` says why. Other runs' rows for the day are kept.
    Returns the rows loaded.

    ``extraction_seq`` is the seq the extraction took before its first request
    (:func:`rafay_billing.ledger.guards.next_extraction_seq`); the load records it in
    ``billing.extractions`` with the rows' count and instance hours, which rating's guards compare.
    Without one (a tool, a test), the load takes a seq itself: the usage counts as read now.
    """
    import psycopg  # keep module import light for the CLI

    day = window.single_day()
    stream = _as_stream(source)
    first = _as_bytes(stream.readline())
    copy_statement = _check_header(first, org_id)
    params = {"usage_date": day, "org_id": org_id, "run_id": run_id}
    context = {"usage_date": day.isoformat(), "run_id": run_id, "source_dir": source_dir or ""}
    lock_key = f"usage|{org_id}|{day.isoformat()}"
    where = f"org {org_id!r}, day {day.isoformat()}"
    try:
        with transaction(conn), conn.cursor() as cur:
            cur.execute(sql("load/lock.sql"), {"lock_key": lock_key})
            cur.execute(sql("load/set_load_context.sql"), context)
            cur.execute(sql("load/delete_org_day_run.sql"), params)
            with cur.copy(copy_statement) as copy:
                copy.write(first)
                while chunk := stream.read(CHUNK_SIZE):
                    copy.write(_as_bytes(chunk))
            loaded = cur.rowcount
            cur.execute(sql("load/count_org_day_run.sql"), params)
            landed = cur.fetchone()[0]
            if landed != loaded:
                raise LoadError(
                    f"usage CSV for {where}: {loaded - landed} of {loaded} rows belong to another "
                    "organization; nothing was loaded"
                )
            if extraction_seq is None:
                cur.execute(sql("guards/next_seq.sql"))
                extraction_seq = int(cur.fetchone()[0])
            cur.execute(sql("load/record_extraction.sql"), {**params, "extraction_seq": extraction_seq})
            if cur.fetchone() is None:
                raise LoadError(
                    f"usage for {where}: extraction seq {extraction_seq} belongs to another (org, day, run) "
                    "(see billing.extractions); nothing was loaded - extract the day again"
                )
    except psycopg.errors.UniqueViolation as exc:
        raise LoadError(
            f"usage CSV for {where} repeats a record (same org, day, run and record_seq); nothing was "
            f"loaded ({exc.diag.message_detail or exc})"
        ) from None
    except psycopg.errors.CheckViolation as exc:
        raise LoadError(
            f"usage CSV for {where} holds rows of another day (window_start/window_end must be that day's "
            f"bounds); nothing was loaded ({exc.diag.message_primary})"
        ) from None
    except psycopg.IntegrityError as exc:
        if exc.sqlstate != "23000":  # not the ledger's own refusal: a cell the table does not take
            raise _bad_cell(where, exc) from None
        # the ledger's own refusal (a closed period): say it as the database does
        raise LoadError(f"usage for {where} cannot be replaced: {exc.diag.message_primary}") from None
    except psycopg.DataError as exc:
        raise _bad_cell(where, exc) from None
    return loaded


def _bad_cell(where: str, exc: Any) -> LoadError:
    return LoadError(
        f"usage CSV for {where} has a bad cell; nothing was loaded: {exc.diag.message_primary} "
        f"({exc.diag.context or 'no context'})"
    )
