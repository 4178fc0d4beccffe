"""Tasks that run after an upstream failure (trigger rule all_done) get no window XCom when
resolve_window failed on a bad conf: they fail at once, without retries, saying why (they crashed
with ``TypeError: 'NoneType' object is not subscriptable`` and retried for a minute)."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from rafay_provider import pipeline


class _TI:
    def xcom_pull(self, **kwargs: object) -> None:
        return None


@pytest.mark.parametrize("call", [
    lambda: pipeline.load_usage(None, None, {"ti": _TI(), "run_id": "manual__x"}),
    lambda: pipeline.load_usage(None, [[{"org_id": "ujzde8g", "name": "A", "org_seq": 0}]],
                                {"ti": _TI(), "run_id": "manual__x"}),
    lambda: pipeline.check_run(None, {"ti": _TI(), "run_id": "manual__x"}),
])
def test_no_window_fails_without_retries_naming_resolve_window(call) -> None:
    with pytest.raises(AirflowFailException, match="resolve_window did not succeed"):
        call()
