"""Report downloads through the Billing app from an ``s3://`` landing root (moto's S3 API on loopback,
``ObjectStoragePath`` through the Amazon provider's filesystem, as the DAG writes it)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from fastapi.testclient import TestClient

from rafay_provider.ui import reports
from rafay_provider.ui.app import Sources, create_app
from rafay_provider.ui.auth import require_user

BUCKET = "billing-view"
WINDOW_DIR = "window=20261110T000000Z_20261111T000000Z"
RUN_DIR = "run=manual__2026-11-11T06_00_00_00_00-77aa11"


@pytest.fixture
def s3_root(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        for key, value in {
            "AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": str(tmp_path / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        }.items():
            monkeypatch.setenv(key, value)
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        from airflow.sdk import ObjectStoragePath

        root = ObjectStoragePath(f"s3://{BUCKET}/rafay")
        run = root / "reports" / WINDOW_DIR / RUN_DIR
        (run / "line-items.csv").write_text("org_id,amount\nujzde8g,12.34\n")
        (run / "ncp-metrics-11102026-060000.csv").write_text("x\n")
        yield root
    finally:
        server.stop()


def test_reports_are_listed_and_downloaded_from_s3(s3_root) -> None:
    listed = reports.list_reports(s3_root, date(2026, 11, 10), date(2026, 11, 11))
    assert [f.name for f in listed] == [f"{WINDOW_DIR}/{RUN_DIR}/line-items.csv",
                                       f"{WINDOW_DIR}/{RUN_DIR}/ncp-metrics-11102026-060000.csv"]
    assert reports.list_reports(s3_root, date(2026, 11, 11), date(2026, 11, 12)) == []  # not that window

    app = create_app(Sources(lambda: {}, lambda: s3_root, lambda: "/"))
    app.dependency_overrides[require_user] = lambda: object()
    response = TestClient(app).get(f"/reports/{WINDOW_DIR}/{RUN_DIR}/line-items.csv")
    assert response.status_code == 200
    assert response.text == "org_id,amount\nujzde8g,12.34\n"
    assert "s3://" not in response.headers.get("content-disposition", "")
