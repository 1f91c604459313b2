"""Real server processes for tests and benchmarks: the one launcher.

A server is a child process started on a free loopback port in its own session, with its output in a log
file; it is ready when a URL answers 200 (and any extra condition holds), and it is stopped by its pid:
SIGTERM, then SIGKILL to its own process group after a grace period. The API tests (uvicorn), the
end-to-end harness (Prometheus, Alertmanager, ``fundmodel serve`` under gunicorn), the multiprocess
metrics test (gunicorn), the rollout measurements' recorded Prometheus and ``bench/api.py`` all start
their servers here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

FUNDMODEL_CLI = str(Path(sys.executable).with_name("fundmodel"))
STOP_GRACE_SECONDS = 10.0
_READY_POLL_SECONDS = 0.1


class ServerNotReadyError(RuntimeError):
    """A server exited while starting, or did not become ready in time (the message holds its log's tail)."""


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(
        {
            "DATABASE_URL": database_url,
            "APP_ENV": "development",
            "STAGE_VALIDATION_MODE": "warn",
            "LOG_LEVEL": "WARNING",
        }
    )
    env.update(extra)
    return env


class ManagedProcess:
    """A child process we started, with its log file; stopped by pid, never by name."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            self.argv,
            cwd=cwd,
            env=None if env is None else dict(env),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Its own session: a Ctrl-C in pytest does not hit it before our teardown, and its process
            # group (a gunicorn master and its workers) is ours alone to kill.
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 40) -> str:
        self._log.flush()
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def terminate(self) -> None:
        """Ask the process to exit (SIGTERM) without waiting, so several can shut down at once."""
        if self.alive():
            self.process.terminate()

    def stop(self, grace_seconds: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM, wait ``grace_seconds``, then SIGKILL the process group (children included)."""
        self.terminate()
        try:
            self.process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)  # the group of the session we started
            self.process.wait(timeout=grace_seconds)
        self._log.close()


def wait_until_ready(
    process: ManagedProcess,
    url: str,
    *,
    timeout: float,
    interval: float = _READY_POLL_SECONDS,
    also: Callable[[], bool] | None = None,
) -> None:
    """Poll ``url`` until it answers 200 and ``also()`` holds; raise if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise ServerNotReadyError(
                f"{process.name} exited at start (status {process.process.returncode}):\n{process.tail()}"
            )
        try:
            answered = httpx.get(url, timeout=1.0).status_code == 200
        except httpx.TransportError:
            answered = False
        if answered and (also is None or also()):
            return
        time.sleep(interval)
    raise ServerNotReadyError(f"{process.name} not ready after {timeout}s:\n{process.tail()}")


def uvicorn_argv(port: int, *extra_args: str) -> list[str]:
    """The service under uvicorn on 127.0.0.1:``port`` (the app factory, no access log)."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "fundmodel.api.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        *extra_args,
    ]


@contextmanager
def uvicorn_servers(
    env: Mapping[str, str],
    logs: list[Path],
    *,
    timeout: float = 60.0,
    extra_args: Sequence[str] = (),
) -> Iterator[list[str]]:
    """Start one uvicorn service per log file, all at once; yields their base URLs once all are ready."""
    started: list[tuple[ManagedProcess, str]] = []
    try:
        for log in logs:
            port = free_port()
            process = ManagedProcess("uvicorn", uvicorn_argv(port, *extra_args), log, env=env)
            started.append((process, f"http://127.0.0.1:{port}"))
        for process, base in started:
            wait_until_ready(process, f"{base}/readyz", timeout=timeout)
        yield [base for _, base in started]
    finally:
        for process, _ in started:
            process.terminate()
        for process, _ in started:
            process.stop()


@contextmanager
def uvicorn_server(
    env: Mapping[str, str], log: Path, *, timeout: float = 60.0, extra_args: Sequence[str] = ()
) -> Iterator[str]:
    """One uvicorn service; yields its base URL."""
    with uvicorn_servers(env, [log], timeout=timeout, extra_args=extra_args) as (base,):
        yield base
