"""A PostgreSQL 15 server of a test's own: initdb into a temporary directory, start, stop, start again.

For tests that must take the database away (outages, restarts) without touching the shared server on
5432. The server listens on 127.0.0.1 on a free port with its unix socket in its own directory, runs with
``fsync=off`` (test data is disposable) and trusts local connections as user ``postgres``. PostgreSQL refuses
to run as root, so when the tests run as root every server command runs as the ``postgres`` OS user
(``runuser -u postgres --``) on a directory chown'ed to it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.api.servers import free_port

POSTGRES_BIN_DIR = Path(os.environ.get("FUNDMODEL_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
POSTGRES_OS_USER = "postgres"
_COMMAND_TIMEOUT_SECONDS = 60


def missing_reason() -> str | None:
    """Why no instance can be started here (None when initdb and pg_ctl are available)."""
    for program in ("initdb", "pg_ctl"):
        if not (POSTGRES_BIN_DIR / program).is_file():
            return (
                f"{POSTGRES_BIN_DIR / program} not found (set FUNDMODEL_TEST_PG_BIN to a PostgreSQL bin dir)"
            )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(POSTGRES_OS_USER)
        except KeyError:
            return f"running as root and there is no {POSTGRES_OS_USER!r} OS user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root and runuser is not available"
    return None


@dataclass(frozen=True, slots=True)
class PostgresInstance:
    """One initialised data directory and the commands to start and stop its server."""

    root: Path
    port: int

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of ``database`` over TCP (what the service is configured with)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        # fsync=off survives the crash tests' immediate stop (the WAL is in the OS cache);
        # synchronous_commit=off would not: a commit acknowledged before its WAL was written is lost.
        options = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off"
        )
        self._pg_ctl("start", "-w", "-t", "30", "-l", str(self.log_file), "-o", options)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``immediate`` kills it without a checkpoint, like a crash)."""
        self._pg_ctl("stop", "-w", "-t", "30", "-m", mode)

    def is_running(self) -> bool:
        result = _run_as_postgres(
            [str(POSTGRES_BIN_DIR / "pg_ctl"), "status", "-D", str(self.data_dir)], check=False
        )
        return result.returncode == 0

    def server_log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def _pg_ctl(self, *arguments: str) -> None:
        command = [str(POSTGRES_BIN_DIR / "pg_ctl"), arguments[0], "-D", str(self.data_dir), *arguments[1:]]
        result = _run_as_postgres(command, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"pg_ctl {arguments[0]} failed ({result.returncode}): {result.stdout}{result.stderr}"
                f"\n{self.server_log()[-2000:]}"
            )


@contextmanager
def postgres_instance() -> Iterator[PostgresInstance]:
    """An initialised and started server; stopped (immediately) and deleted afterwards.

    The directory is made with :func:`tempfile.mkdtemp` rather than pytest's ``tmp_path``, whose parents
    are private to the test user and so not traversable by the ``postgres`` OS user.
    """
    reason = missing_reason()
    if reason is not None:
        raise RuntimeError(reason)
    root = Path(tempfile.mkdtemp(prefix="fundmodel-pg-"))
    instance = PostgresInstance(root=root, port=free_port())
    try:
        instance.socket_dir.mkdir()
        if os.geteuid() == 0:
            owner = pwd.getpwnam(POSTGRES_OS_USER)
            for path in (root, instance.socket_dir):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        _run_as_postgres(
            [
                str(POSTGRES_BIN_DIR / "initdb"),
                "-D",
                str(instance.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "--encoding=UTF8",
                "--locale=C",
            ],
            check=True,
        )
        instance.start()
        yield instance
    finally:
        if instance.data_dir.exists() and instance.is_running():
            instance.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def _run_as_postgres(command: list[str], *, check: bool) -> subprocess.CompletedProcess[str]:
    if os.geteuid() == 0:
        command = ["runuser", "-u", POSTGRES_OS_USER, "--", *command]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=_COMMAND_TIMEOUT_SECONDS, check=check
    )
