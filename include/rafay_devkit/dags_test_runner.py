"""``airflow dags test``, with the in-process Task Execution API built for the newest API version only.

Why: ``airflow dags test`` serves the Task Execution API inside its own process, and Cadwyn builds
that API's routers for every API version Airflow still supports (ten in 3.3): about 7 s of CPU in a
run of the billing DAG that takes about 16 s, paid again by every run the tests, the demo and the
benchmarks start. The Task SDK installed beside it speaks only the newest version
(``airflow.sdk.api.datamodels._generated.API_VERSION``), so the older versions' routers are never
called. This runner builds the API with that version alone, leaving out the routes that exist only in
older versions (as Cadwyn's build leaves them out of the newest one), then runs Airflow's own CLI
unchanged. ``tests/unit/rafay_devkit/test_dags_test_runner.py`` proves that the newest version's
OpenAPI document is the same either way.

If Airflow's internals have moved (an upgrade), the runner says so on stderr and builds every version,
as plain ``airflow dags test`` does: slower, never different.

``python -m rafay_devkit.dags_test_runner dags test <dag_id> <date> [...]`` takes ``airflow``'s arguments.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def newest_version_only() -> str:
    """Narrow Airflow's Execution API version bundle to the version its Task SDK speaks; that version.

    Mutates Airflow's module state: call it in a process that runs one command (this runner's)."""
    from airflow.api_fastapi.execution_api import routes, versions
    from airflow.sdk.api.datamodels._generated import API_VERSION
    from cadwyn import HeadVersion, Version, VersionBundle
    from cadwyn.route_generation import _DELETED_ROUTE_TAG

    newest = versions.bundle.versions[0].value
    if str(newest) != API_VERSION:
        raise RuntimeError(f"the Task SDK speaks API version {API_VERSION}, the newest served is {newest}")
    versions.bundle = VersionBundle(HeadVersion(), Version(newest))
    router = routes.execution_api_router
    router.routes[:] = [route for route in router.routes if _DELETED_ROUTE_TAG not in getattr(route, "tags", ())]
    return API_VERSION


def _build_for_newest_version(build: Callable[..., Any]) -> Callable[..., Any]:
    def build_app(*args: Any, **kwargs: Any) -> Any:
        try:
            newest_version_only()
        except Exception as exc:  # an Airflow upgrade moved what this relies on: build as Airflow does
            print(f"rafay_devkit.dags_test_runner: building every Execution API version ({exc!r})",
                  file=sys.stderr)
        return build(*args, **kwargs)

    return build_app


def main(argv: list[str] | None = None) -> int:
    """Run ``airflow <argv>`` (``dags test`` with the narrowed Execution API); Airflow's exit status."""
    args = sys.argv[1:] if argv is None else argv
    # Imported here, not at module level: the airflow package reads its configuration on import.
    from airflow.__main__ import main as airflow_main

    if args[:2] == ["dags", "test"]:  # the one command that serves the Execution API in its own process
        from airflow.api_fastapi.execution_api import app as execution_app

        execution_app.create_task_execution_api_app = _build_for_newest_version(
            execution_app.create_task_execution_api_app
        )
    sys.argv = ["airflow", *args]
    status = airflow_main()
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
