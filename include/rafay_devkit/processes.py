"""Stopping the helper processes the devkit and the benchmarks start in process groups of their own."""

from __future__ import annotations

import os
import signal
import subprocess


def stop_process_group(process: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGTERM the group ``process`` leads, SIGKILL it if it has not exited within ``timeout``;
    a process that is gone already is fine."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)
    except ProcessLookupError:
        process.wait()
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
