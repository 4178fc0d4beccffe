"""Run the FinOps Foundation's focus-validator 1.0.0 (in ``.venv-focus``) on a file, as it really behaves.

* It lives in a virtualenv of its own (``.ci/focus-validator.sh`` makes it; ``make test`` runs that
  first). A missing venv is a test failure that says so, never a skip.
* It reads its currency list relative to the working directory, so it runs with its
  ``site-packages`` directory as the working directory (the data file's path is made absolute).
* It exits 0 whether rules pass or fail: the verdict is in its output, "Validation succeeded." or
  "Errors encountered:", one "<rule> failed:" block per failed rule and "Validation failed!".
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.paths import REPO

VENV = REPO / ".venv-focus"
SETUP = ".ci/focus-validator.sh"
_FAILED = re.compile(r"^(\S+) failed:$", re.M)


@dataclass(frozen=True)
class ValidatorResult:
    succeeded: bool
    failed_rules: tuple[str, ...]
    output: str

    def report(self) -> str:
        rules = ", ".join(self.failed_rules) or "(none named)"
        return f"focus-validator 1.0.0 failed rules: {rules}\n--- its output ---\n{self.output}"


def validator_site_packages() -> Path:
    """The validator venv's site-packages; fails the test (not a skip) when the venv is missing."""
    script = VENV / "bin" / "focus-validator"
    if not script.is_file():
        pytest.fail(f"{VENV} is missing: run {SETUP} (make test runs it) to install focus-validator 1.0.0",
                    pytrace=False)
    found = sorted((VENV / "lib").glob("python3*/site-packages"))
    if not found or not (found[0] / "focus_validator").is_dir():
        pytest.fail(f"{VENV} has no focus_validator package: run {SETUP} again", pytrace=False)
    return found[0]


def run_validator(data_file: Path, *, timeout: float = 300) -> ValidatorResult:
    """Validate ``data_file`` (``.csv`` or ``.parquet``) against FOCUS 1.0 and parse the verdict."""
    site = validator_site_packages()
    proc = subprocess.run(
        [str(VENV / "bin" / "focus-validator"), "--data-file", str(Path(data_file).resolve()),
         "--validate-version", "1.0"],
        cwd=site, capture_output=True, text=True, timeout=timeout,
    )
    output = proc.stdout + (f"\n--- stderr ---\n{proc.stderr}" if proc.stderr.strip() else "")
    failed = tuple(_FAILED.findall(proc.stdout))
    lines = {line.strip() for line in proc.stdout.splitlines()}
    succeeded = proc.returncode == 0 and "Validation succeeded." in lines and not failed \
        and "Validation failed!" not in lines
    if not succeeded and not failed and proc.returncode == 0 and "Validation failed!" not in lines \
            and "Validation succeeded." not in lines:
        # neither verdict: it crashed or printed something new; show everything
        failed = ("<no verdict in the output>",)
    if proc.returncode != 0:
        failed = failed + (f"<exit status {proc.returncode}>",)
    return ValidatorResult(succeeded, failed, output)


def assert_focus_valid(data_file: Path) -> None:
    """Fail the test, listing the failing rules, unless focus-validator 1.0.0 accepts ``data_file``."""
    result = run_validator(data_file)
    if not result.succeeded:
        pytest.fail(f"{Path(data_file).name}: {result.report()}", pytrace=False)
