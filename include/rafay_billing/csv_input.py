"""Reading an operator's CSV file (the price book, the contracts): UTF-8 text and its records with the
line numbers that every refusal names."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from typing import Any


def utf8_text(text: str | bytes, error: Callable[[list[tuple[int, str]]], Exception]) -> str:
    """The CSV as text: bytes must be UTF-8 (else ``error([(1, why)])`` is raised); a byte-order mark
    (Excel) is dropped."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error([(1, f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})")]) from None
    return text.removeprefix("\ufeff")


def csv_records(reader: Any, problems: list[tuple[int, str]]) -> Iterator[tuple[int, list[str]]]:
    """``(line, cells)`` of every non-blank data record; stops at unreadable CSV (a problem)."""
    line = reader.line_num + 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problems.append((line, f"unreadable CSV: {exc}"))
            return
        this_line, line = line, reader.line_num + 1
        if any(cell.strip() for cell in record):
            yield this_line, record
