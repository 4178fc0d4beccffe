"""``python -m rafay_simulator`` / ``rafay-simulator``: run the simulator as its own process.

Prints ``Rafay simulator listening on <url>`` once bound (and writes the URL to ``--ready-file``),
then serves until SIGINT or SIGTERM and exits 0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import threading
from datetime import datetime
from types import FrameType

from rafay_simulator.dataset import as_utc
from rafay_simulator.server import RafaySimulator, SimulatorConfig


def _range(text: str) -> tuple[int, int]:
    lo, sep, hi = text.partition("-")
    try:
        low, high = int(lo), int(hi) if sep else int(lo)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or N-M, got {text!r}") from None
    if low < 0 or high < low:
        raise argparse.ArgumentTypeError(f"bad range {text!r}")
    return low, high


def _time(text: str) -> datetime:
    try:
        return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO-8601 time, got {text!r}") from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line; defaults match ``SimulatorConfig`` except the port (8080)."""
    defaults = SimulatorConfig()
    p = argparse.ArgumentParser(prog="rafay-simulator", description="Simulated Rafay console (usage metering APIs).")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--orgs", type=int, default=defaults.orgs)
    p.add_argument("--profiles-per-org", type=_range, default=defaults.profiles_per_org, metavar="N-M")
    p.add_argument("--instances-per-profile", type=_range, default=defaults.instances_per_profile, metavar="N-M")
    p.add_argument("--latency-ms", type=int, default=defaults.latency_ms)
    p.add_argument("--api-key", default=os.environ.get("RAFAY_SIM_API_KEY", defaults.api_key),
                   help="accepted x-api-key (default: $RAFAY_SIM_API_KEY or %(default)s)")
    p.add_argument("--max-page-size", type=int, default=None)
    p.add_argument("--v2-default-limit", type=int, default=None)
    p.add_argument("--partner-default-limit", type=int, default=defaults.partner_default_limit)
    p.add_argument("--seed-fields-only", action="store_true")
    p.add_argument("--omit-count", action="store_true", help="listing replies carry no count")
    p.add_argument("--echo-requested-limit", action="store_true",
                   help="echo the limit asked for, not the (capped) page size served")
    p.add_argument("--ignore-paging", action="store_true",
                   help="seed-era server: whole listings, no paging fields, offset/limit ignored")
    p.add_argument("--omit-paging-fields", action="store_true",
                   help="page as asked (and capped) but send no count/offset/limit back")
    p.add_argument("--anomalies", action="store_true", help="include a few records with invalid usage values")
    p.add_argument("--now", type=_time, default=None, help="fixed simulated clock, e.g. 2026-11-27T00:00:00Z")
    p.add_argument("--tls", action="store_true", help="serve https with a throw-away CA (path printed on stderr)")
    p.add_argument("--ca-out", default=None, help="with --tls: also copy the CA certificate to this path")
    p.add_argument("--ready-file", default=None, help="write the URL here once listening")
    p.add_argument("--apis", type=_apis, default=defaults.apis, metavar="v2,partner",
                   help="the APIs served; 'partner' alone is a partner-only console (/v2/... answers 404)")
    p.add_argument("--org-listing-ids", action="store_true",
                   help="the org listing carries each org's partner id as metadata.id")
    return p.parse_args(argv)


def _apis(text: str) -> tuple[str, ...]:
    apis = tuple(a.strip() for a in text.split(",") if a.strip())
    if not apis or any(a not in ("v2", "partner") for a in apis):
        raise argparse.ArgumentTypeError(f"a comma-separated subset of v2,partner, got {text!r}")
    return apis


def main(argv: list[str] | None = None) -> int:
    """Run until SIGINT/SIGTERM."""
    args = parse_args(argv)
    config = SimulatorConfig(
        seed=args.seed, orgs=args.orgs, profiles_per_org=args.profiles_per_org,
        instances_per_profile=args.instances_per_profile, api_key=args.api_key, latency_ms=args.latency_ms,
        max_page_size=args.max_page_size, v2_default_limit=args.v2_default_limit,
        partner_default_limit=args.partner_default_limit, seed_fields_only=args.seed_fields_only,
        now=args.now, tls=args.tls, anomalies=args.anomalies, omit_count=args.omit_count,
        echo_requested_limit=args.echo_requested_limit, ignore_paging=args.ignore_paging,
        omit_paging_fields=args.omit_paging_fields,
        apis=args.apis, org_listing_ids=args.org_listing_ids,
    )
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    sim = RafaySimulator(config, host=args.host, port=args.port).start()
    try:
        if sim.ca_bundle:
            if args.ca_out:
                shutil.copyfile(sim.ca_bundle, args.ca_out)
            print(f"CA bundle: {args.ca_out or sim.ca_bundle}", file=sys.stderr, flush=True)
        if args.ready_file:  # written (atomically) before the line, so either signal means "ready"
            tmp = f"{args.ready_file}.tmp"
            with open(tmp, "w") as fh:
                fh.write(sim.url + "\n")
            os.replace(tmp, args.ready_file)
        print(f"Rafay simulator listening on {sim.url}", flush=True)
        while not stop.wait(0.2):
            pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
