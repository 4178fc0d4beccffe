"""One (org, UTC day) read from Rafay and landed (raw pages and a usage CSV under the landing root):
the step both the daily extraction and the close's late-usage re-read run."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rafay_billing.window import Window
from rafay_provider import metrics
from rafay_provider.payloads import BatchOrg, LandedOrgDay
from rafay_provider.resources import new_billing_connection, org_day_dir, page_writer

log = logging.getLogger(__name__)


@contextmanager
def extraction_seqs() -> Iterator[Callable[[], int]]:
    """``take_seq()``: a new ``extraction_seq`` from the billing database (issue 21 rule 3), on one
    connection opened at the first call and closed at the end."""
    from rafay_billing.ledger.guards import next_extraction_seq

    opened: list[Any] = []

    def take_seq() -> int:
        if not opened:
            opened.append(new_billing_connection())
        return next_extraction_seq(opened[0])

    try:
        yield take_seq
    finally:
        for conn in opened:
            conn.close()


def extract_org_day(
    client: Any, org: BatchOrg, day: Window, run_id: str, source: Any, take_seq: Callable[[], int] | None = None
) -> LandedOrgDay:
    """Extract one (org, day) and land its raw pages and usage CSV. Its ``extraction_seq`` is taken
    before the first request to Rafay (``take_seq``, else on a connection of its own): rating never
    replaces a day with an extraction that started before the one the day holds."""
    from rafay_billing.source.extract import OrgRef
    from rafay_billing.source.usage_csv import write_usage_csv

    if take_seq is None:
        with extraction_seqs() as own:
            extraction_seq = own()
    else:
        extraction_seq = take_seq()
    org_dir = org_day_dir(day, org["org_id"], run_id)
    org_dir.mkdir(parents=True, exist_ok=True)
    # Rows spool to temporary files as pages arrive and stream into usage.csv below: an org with
    # 100,000 instances never sits in the task's memory all at once.
    ref = OrgRef(org["org_id"], org["name"], org.get("partner_id"), org.get("partner_problem"))
    result = source.extract_org(client, ref, day, org_seq=org["org_seq"], on_page=page_writer(org_dir),
                                keep_rows=False)
    usage_path = org_dir / "usage.csv"
    with result, usage_path.open("w", encoding="utf-8", newline="") as handle:
        rows = write_usage_csv(result.iter_rows(), handle)
    log.info("%s, day %s, extraction %d; landed %s", result.summary_line(), day.start.date(), extraction_seq,
             usage_path)
    metrics.extraction(result)
    return {
        "org_id": org["org_id"],
        "name": org["name"],
        "org_seq": org["org_seq"],
        "day": day.start.date().isoformat(),
        "usage_uri": str(usage_path),
        "source_dir": str(org_dir),
        "rows": rows,
        "extraction_seq": extraction_seq,
    }
