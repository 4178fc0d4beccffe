"""The floor a single-threaded asyncio client reaches on a shape: the same requests as the command,
nothing else.

Why: round 3 blamed the command's remaining distance to the latency bound on its threads (GIL and
slot hand-offs) and named an asyncio client as the next step. This measures that claim before
anyone rewrites the client: one event loop (aiohttp), the command's dependency chain (the org
listing, then each org's profile listing, then each profile's usage listing, each paged by
``offset``/``limit`` until ``count``), ``concurrency`` connections, every page decoded with
``json.loads(parse_float=Decimal)``; no paging checks, no normalisation, no CSV. Whatever the
command takes beyond this is what a different transport could at most win.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from decimal import Decimal
from typing import Any

PAGE_LIMIT = 100  # the command's default page size


async def _fetch(url: str, api_key: str, ca: str | None, start: str, end: str, concurrency: int) -> int:
    import aiohttp  # bench-only; imported when the floor is measured

    context = ssl.create_default_context(cafile=ca) if ca else None
    slots = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency, ssl=context if context else False)
    async with aiohttp.ClientSession(url, connector=connector, headers={"x-api-key": api_key}) as session:

        async def page(path: str, params: dict[str, str]) -> Any:
            async with slots, session.get(path, params=params) as response:
                response.raise_for_status()
                body = await response.read()
            return json.loads(body, parse_float=Decimal)

        async def listing(path: str, field: str, extra: dict[str, str] | None = None) -> list[dict]:
            items: list[dict] = []
            while True:
                data = await page(path, {**(extra or {}), "offset": str(len(items)), "limit": str(PAGE_LIMIT)})
                got = data.get(field) or []
                items += got
                if not got or len(items) >= int(data.get("count") or 0):
                    return items

        async def org(item: dict) -> int:
            org_id = item["metadata"]["name"]
            profiles = await listing(f"/v2/organizations/{org_id}/ncp/profiles", "items")
            usage = await asyncio.gather(*(
                listing(f"/v2/organizations/{org_id}/ncp/profiles/{p['metadata']['name']}/usage",
                        "instance_usage_data", {"start_time": start, "end_time": end})
                for p in profiles))
            return sum(len(records) for records in usage)

        orgs = await listing("/v2/organizations", "items")
        return sum(await asyncio.gather(*(org(item) for item in orgs)))


def fetch_all(url: str, api_key: str, ca: str | None, start: str, end: str, concurrency: int) -> int:
    """Every usage record of the window through one event loop; how many were read."""
    return asyncio.run(_fetch(url, api_key, ca, start, end, concurrency))
