"""Real server processes for tests that need them: uvicorn on free loopback ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

FUNDMODEL_CLI = str(Path(sys.executable).with_name("fundmodel"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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


@contextmanager
def uvicorn_servers(
    env: Mapping[str, str], logs: list[Path], *, timeout: float = 60.0
) -> Iterator[list[str]]:
    """Start one ``fundmodel.api.app:create_app`` uvicorn process per log file, all at once."""
    started: list[tuple[subprocess.Popen[bytes], str, Path]] = []
    try:
        for log in logs:
            port = free_port()
            with log.open("wb") as output:
                process = subprocess.Popen(
                    [
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
                    ],
                    env=dict(env),
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            started.append((process, f"http://127.0.0.1:{port}", log))
        for process, base, log in started:
            _wait_until_healthy(base, process, log, timeout)
        yield [base for _, base, _ in started]
    finally:
        for process, _, _ in started:
            process.terminate()
        for process, _, _ in started:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@contextmanager
def uvicorn_server(env: Mapping[str, str], log: Path, *, timeout: float = 60.0) -> Iterator[str]:
    """One server; yields its base URL."""
    with uvicorn_servers(env, [log], timeout=timeout) as (base,):
        yield base


def _wait_until_healthy(base: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server not ready after {timeout}s: {log.read_text()[-2000:]}")
