"""A real Redis on loopback for the Celery broker: Debian's ``redis-server`` (``.ci/install-redis.sh``
installs it), as docker-compose.yaml's ``redis`` service, with persistence on.

``appendonly yes`` with ``appendfsync always``: every queued Celery message is in the append-only
file before Redis answers, so a broker restart (:meth:`RedisServer.restart`) loses none. Bound to
127.0.0.1 only, protected mode on, on a port of its own; the data directory and log are under the
given directory. The server gets SIGTERM from the kernel if the process that started it dies.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from rafay_devkit.local_airflow import DIE_WITH_PARENT, LocalAirflowError, tail, wait_for
from rafay_devkit.postgres import free_port
from rafay_devkit.processes import stop_process_group

REDIS_SERVER_ENV = "RAFAY_REDIS_SERVER"
DEBIAN_REDIS = "/usr/bin/redis-server"


def redis_server_bin() -> str:
    """``$RAFAY_REDIS_SERVER``, else ``redis-server`` on PATH, else Debian's; raises with the fix."""
    candidate = os.environ.get(REDIS_SERVER_ENV) or shutil.which("redis-server") or DEBIAN_REDIS
    if not os.access(candidate, os.X_OK):
        raise LocalAirflowError(
            f"no redis-server at {candidate}: run .ci/install-redis.sh (make test-deps) or set "
            f"{REDIS_SERVER_ENV} to a redis-server binary"
        )
    return candidate


class RedisServer:
    """One ``redis-server`` process on ``127.0.0.1:<port>``; :meth:`restart` keeps port and data."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = Path(directory)
        self.port = port or free_port()
        self.log_path = self.directory / "redis.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _config(self) -> str:
        return "\n".join(
            [
                "bind 127.0.0.1",
                "protected-mode yes",
                f"port {self.port}",
                "daemonize no",
                f"dir {self.directory / 'data'}",
                f"logfile {self.log_path}",
                'save ""',
                "appendonly yes",
                "appendfsync always",
                "",
            ]
        )

    def start(self) -> RedisServer:
        (self.directory / "data").mkdir(parents=True, exist_ok=True)
        conf = self.directory / "redis.conf"
        conf.write_text(self._config())
        self.process = subprocess.Popen(
            [sys.executable, "-c", DIE_WITH_PARENT, str(os.getpid()), redis_server_bin(), str(conf)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_for(self.ping, timeout=30, interval=0.1, what=f"redis-server on port {self.port}",
                 on_timeout=lambda: f"; {self.log_path}:\n{tail(self.log_path)}")
        return self

    def ping(self) -> bool:
        import redis

        if self.process is None or self.process.poll() is not None:
            raise LocalAirflowError(f"redis-server exited; {self.log_path}:\n{tail(self.log_path)}")
        try:
            return bool(redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def client(self):  # -> redis.Redis (redis is imported lazily)
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (Redis flushes the append-only file and exits), SIGKILL if it does not."""
        process, self.process = self.process, None
        if process is not None:
            stop_process_group(process, timeout)

    def restart(self, down_seconds: float = 0.0) -> None:
        """Stop, stay down ``down_seconds``, start again on the same port with the same data."""
        self.stop()
        time.sleep(down_seconds)
        self.start()
