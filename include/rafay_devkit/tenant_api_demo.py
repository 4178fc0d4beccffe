"""The end of ``make demo``: one tenant's invoice list fetched through the tenant statements API with a
fresh token, the way a customer portal would (issue 24).

A token is made with ``rafay-billing tenant-token create`` (the writer's login), the service is started
with ``rafay-billing serve-tenant-api`` as the tenant API role's login on a free loopback port, the list is
fetched over HTTP with the token, and the service is stopped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

from rafay_devkit.postgres import free_port


def _run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rafay_billing.cli", *args], capture_output=True, text=True,
                          env=env, timeout=120, check=False)


def show_tenant_documents(writer_dsn: str, tenant_dsn: str, org_id: str, out: Any = None) -> bool:
    """Make a token for ``org_id``, serve the API, print the org's documents from it; True when it worked."""
    import requests

    out = out or sys.stdout
    env = {**os.environ, "USER": os.environ.get("USER") or "demo"}
    made = _run_cli("tenant-token", "create", "--org", org_id, "--expires", "1d", "--label", "make demo",
                    "--dsn", writer_dsn, env=env)
    if made.returncode != 0:
        print(f"  tenant-token create failed: {made.stderr.strip()}", file=out)
        return False
    token = made.stdout.strip()
    port = free_port()
    print(f"\n  Running: rafay-billing tenant-token create --org {org_id} --expires 1d  (token {token[:16]}…)", file=out)
    print(f"  Running: rafay-billing serve-tenant-api --port {port}  (as the tenant API role's login)", file=out)
    server = subprocess.Popen([sys.executable, "-m", "rafay_billing.cli", "serve-tenant-api", "--dsn", tenant_dsn,
                               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{url}/healthz", timeout=2).raise_for_status()
                break
            except requests.RequestException:
                if server.poll() is not None or time.monotonic() > deadline:
                    print(f"  the tenant API did not start: {(server.stderr.read() if server.stderr else '')[-500:]}",
                          file=out)
                    return False
                time.sleep(0.2)
        answer = requests.get(f"{url}/v1/documents", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        answer.raise_for_status()
        documents = answer.json()["documents"]
        print(f"\nGET {url}/v1/documents as org {org_id} ({len(documents)} documents):", file=out)
        print(f"  {'Number':<14} {'Type':<12} {'Period':<8} {'Currency':<8} {'Subtotal':>14}", file=out)
        for doc in documents:
            print(f"  {doc['number']:<14} {doc['document_type']:<12} {doc['period']:<8} {doc['currency']:<8} "
                  f"{doc['subtotal']:>14}", file=out)
        return True
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


def show_first_tenant(logins: Any, month: str, out: Any = None) -> bool:
    """``show_tenant_documents`` for the org of ``month``'s first invoice (``logins``: a ``BillingLogins``)."""
    import psycopg

    from rafay_billing.db import sql

    with psycopg.connect(logins.admin) as conn:
        row = conn.execute(sql("tenant_api/demo_org.sql"), {"period_start": f"{month}-01"}).fetchone()
    if row is None or not logins.tenant_api:
        print("\n  no invoice to show through the tenant API", file=out or sys.stdout)
        return False
    return show_tenant_documents(logins.writer, logins.tenant_api, row[0], out)
