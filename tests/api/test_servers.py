"""The one server launcher: it names a server that died at start, and stops what it started, children too."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tests.api.servers import ManagedProcess, ServerNotReadyError, free_port, wait_until_ready

# Ignores SIGTERM and starts a child that sleeps; prints the child's pid so the test can check on it.
_STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
print(child.pid, flush=True)
time.sleep(120)
"""


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (Linux ``/proc``); a killed, not yet reaped zombie is not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _child_pid(process: ManagedProcess) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = process.log_path.read_text().strip()
        if text:
            return int(text.splitlines()[0])
        time.sleep(0.05)
    raise AssertionError(f"no child pid printed: {process.tail()}")


def test_a_server_that_exits_at_start_is_named_with_its_log(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import sys; print('port already taken'); sys.exit(3)"]
    process = ManagedProcess("probe", argv, tmp_path / "probe.log")
    try:
        with pytest.raises(ServerNotReadyError, match=r"probe exited at start \(status 3\)") as caught:
            wait_until_ready(process, f"http://127.0.0.1:{free_port()}/", timeout=10)
        assert "port already taken" in str(caught.value)
    finally:
        process.stop()


def test_a_server_that_never_answers_is_not_ready_after_the_timeout(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import time; time.sleep(60)"]
    process = ManagedProcess("silent", argv, tmp_path / "silent.log")
    try:
        started = time.monotonic()
        with pytest.raises(ServerNotReadyError, match=r"silent not ready after 0\.5s"):
            wait_until_ready(process, f"http://127.0.0.1:{free_port()}/", timeout=0.5)
        assert time.monotonic() - started < 5
    finally:
        process.stop()


def test_stop_kills_a_process_ignoring_sigterm_and_its_children(tmp_path: Path) -> None:
    process = ManagedProcess("stubborn", [sys.executable, "-c", _STUBBORN], tmp_path / "stubborn.log")
    child = _child_pid(process)
    assert _running(child)
    started = time.monotonic()
    process.stop(grace_seconds=0.5)
    assert not process.alive()
    assert process.process.returncode == -9  # killed: it ignored the SIGTERM
    assert time.monotonic() - started < 5
    # The child was in the process group, killed with it.
    deadline = time.monotonic() + 5
    while _running(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(child)
