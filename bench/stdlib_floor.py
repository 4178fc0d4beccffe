"""The floor a whole process reaches on shape (a) with the standard library alone: exec to a CSV written.

Why: target 1 of issue 25 measures ``rafay-billing metrics`` as a process, start-up included, and
round 3 named a transport without requests/urllib3 (``http.client``) as what would close it. This
measures that claim before anyone writes one: the interpreter, ``http.client`` over ``ssl``,
``concurrency`` threads each with one keep-alive connection, the command's dependency chain (the org
listing, then every org's profile listing queued first, then each profile's usage listing, each
paged by ``offset``/``limit`` until ``count``), every page decoded with
``json.loads(parse_float=Decimal)``, and the seed's six cells per record written to one CSV. No
paging checks, retries, proxies, normalisation, sorted file or error handling: no client can start,
fetch and write with less. Whatever the command takes beyond this, run the same way, is what any
transport or start-up work could at most win.

    python bench/stdlib_floor.py URL API_KEY CA|- START END OUT.csv [CONCURRENCY]
"""

from __future__ import annotations

import csv
import http.client
import json
import ssl
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode, urlsplit

PAGE_LIMIT = 100  # the command's default page size


def main(argv: list[str]) -> int:
    url, api_key, ca, start, end, out = argv[:6]
    concurrency = int(argv[6]) if len(argv) > 6 else 8
    parts = urlsplit(url)
    context = ssl.create_default_context(cafile=None if ca == "-" else ca) if parts.scheme == "https" else None
    local = threading.local()
    headers = {"x-api-key": api_key}

    def page(path: str, params: dict[str, str]) -> Any:
        conn = getattr(local, "conn", None)
        if conn is None:
            if context is not None:
                conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=context, timeout=60)
            else:
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
            local.conn = conn
        conn.request("GET", f"{path}?{urlencode(params)}", headers=headers)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"{path}: HTTP {response.status}")
        return json.loads(body, parse_float=Decimal)

    def listing(path: str, field: str, extra: dict[str, str] | None = None) -> list[dict]:
        items: list[dict] = []
        while True:
            data = page(path, {**(extra or {}), "offset": str(len(items)), "limit": str(PAGE_LIMIT)})
            got = data.get(field) or []
            items += got
            if not got or len(items) >= int(data.get("count") or 0):
                return items

    rows: list[list[Any]] = []
    lock = threading.Lock()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:

        def usage(org: str, profile: dict) -> None:
            name = profile["metadata"]["name"]
            records = listing(f"/v2/organizations/{org}/ncp/profiles/{name}/usage", "instance_usage_data",
                              {"start_time": start, "end_time": end})
            cells = [[org, profile.get("spec", {}).get("type", "Unknown"), name, r.get("instance_name", ""),
                      r.get("usage_hours", 0), r.get("status", "")] for r in records]
            with lock:
                rows.extend(cells)

        def profiles(org: str) -> list:
            # the profile listings are queued first; each one queues its org's usage reads behind them
            return [pool.submit(usage, org, p) for p in listing(f"/v2/organizations/{org}/ncp/profiles", "items")]

        listed = [pool.submit(profiles, item["metadata"]["name"]) for item in listing("/v2/organizations", "items")]
        for usage_reads in [f.result() for f in listed]:
            for read in usage_reads:
                read.result()
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Organization", "Profile Type", "Profile", "Instance", "Usage(h)", "Status"])
        writer.writerows(rows)
    print(len(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
