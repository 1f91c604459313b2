"""Every snippet in README.md and docs/ runs, or says why it cannot.

Shell and console blocks run with bash in a sandbox like a reader's checkout after ``make run``: the
repository's ``.venv`` and ``examples/`` linked in, the embedded default database
(``var/fundmodel.sqlite3``, migrated and seeded with the demo fund) and no configuration from the
environment. Every command must exit 0 and print what a console block documents. ``curl`` against
``make run``'s address goes to a real uvicorn server over its own seeded database. Python blocks run
with the venv's interpreter in the same sandbox.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.servers import service_env, uvicorn_server
from tests.docs.docset import ROOT, CodeBlock, code_blocks, doc_pages
from tests.docs.inventories import settings_variables
from tests.docs.snippets import (
    DOCUMENTED_BASE_URL,
    needs_server,
    output_matches,
    resolve_placeholders,
    steps,
    synopsis_variants,
)

VENV_BIN = Path(sys.executable).parent
COMMAND_TIMEOUT_SECONDS = 180
RUNNABLE_LANGUAGES = frozenset({"sh", "bash", "shell", "console", "python"})
# Languages a fence may name. Anything else (or no language) is a failure: the gate must know whether
# a block is meant to run.
KNOWN_LANGUAGES = RUNNABLE_LANGUAGES | {"text", "toml", "json", "yaml", "promql", "http"}


def all_blocks() -> list[CodeBlock]:
    return [block for page in doc_pages() for block in code_blocks(page)]


def runnable_blocks() -> list[CodeBlock]:
    return [block for block in all_blocks() if block.language in RUNNABLE_LANGUAGES]


def reader_env() -> dict[str, str]:
    """The caller's environment without any fundmodel setting: the documented defaults apply."""
    configured = set(settings_variables()) | {"PROMETHEUS_MULTIPROC_DIR"}
    env = {key: value for key, value in os.environ.items() if key.upper() not in configured}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def run(command: str, cwd: Path, *, merge_output: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=cwd,
        env=reader_env(),
        capture_output=not merge_output,
        stdout=subprocess.PIPE if merge_output else None,
        stderr=subprocess.STDOUT if merge_output else None,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )


@pytest.fixture(scope="module")
def seeded_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded database as `make run` leaves it (migrated, demo fund), built once and copied."""
    home = tmp_path_factory.mktemp("docs-template")
    for command in ("fundmodel db migrate", "fundmodel db seed-demo"):
        result = run(command, home)
        assert result.returncode == 0, f"{command}: {result.stderr}"
    return home / "var" / "fundmodel.sqlite3"


def make_sandbox(directory: Path, database: Path) -> Path:
    (directory / "var").mkdir(parents=True)
    shutil.copy2(database, directory / "var" / "fundmodel.sqlite3")
    (directory / ".venv").symlink_to(VENV_BIN.parent)
    (directory / "examples").symlink_to(ROOT / "examples")
    return directory


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory, seeded_database: Path) -> Iterator[str]:
    """`make run`'s service: uvicorn over its own copy of the seeded database, mode warn, no API key."""
    home = make_sandbox(tmp_path_factory.mktemp("docs-server"), seeded_database)
    env = service_env(f"sqlite:///{home / 'var' / 'fundmodel.sqlite3'}")
    with uvicorn_server(env, home / "server.log") as base:
        yield base


@pytest.mark.parametrize("block", all_blocks(), ids=lambda block: block.where)
def test_fence_names_a_known_language(block: CodeBlock) -> None:
    assert block.language in KNOWN_LANGUAGES, (
        f"{block.where}: fence language {block.language or '(none)'!r}; name one of "
        f"{sorted(KNOWN_LANGUAGES)} (`text` for diagrams and synopses that are not commands)"
    )
    assert block.stray_marker is None, (
        f"{block.where}: {block.stray_marker!r} is not `<!-- docs-check: not-runnable: REASON -->`"
    )
    if block.not_runnable_reason is not None:
        runnable = block.language in RUNNABLE_LANGUAGES
        assert runnable, f"{block.where}: a not-runnable marker on a {block.language} block"
        assert len(block.not_runnable_reason) >= 10, f"{block.where}: not-runnable needs a reason"


@pytest.mark.parametrize("block", runnable_blocks(), ids=lambda block: block.where)
def test_snippet_runs_as_documented(
    block: CodeBlock, request: pytest.FixtureRequest, tmp_path: Path, seeded_database: Path
) -> None:
    if block.not_runnable_reason:
        # Counted as a pass on purpose: the marker and its reason are the documented state, checked
        # for form in test_fence_names_a_known_language.
        return
    sandbox = make_sandbox(tmp_path / "checkout", seeded_database)
    if block.language == "python":
        result = run(f"python - <<'DOCS_CHECK_PYTHON'\n{block.text}\nDOCS_CHECK_PYTHON", sandbox)
        assert result.returncode == 0, f"{block.where}: the Python snippet failed:\n{result.stderr[-3000:]}"
        return
    base = request.getfixturevalue("docs_server") if needs_server(block) else None
    for step in steps(block):
        for variant in synopsis_variants(step.command):
            command = resolve_placeholders(variant, sandbox)
            if base is not None:
                command = command.replace(DOCUMENTED_BASE_URL, base)
            result = run(command, sandbox, merge_output=bool(step.expected_output))
            output = result.stdout + (result.stderr or "")
            assert result.returncode == 0, (
                f"{block.where}: `{variant}` exited {result.returncode}:\n{output[-3000:]}"
            )
            if base is not None:
                output = output.replace(base, DOCUMENTED_BASE_URL)
            missing = output_matches(step.expected_output, output)
            assert missing is None, (
                f"{block.where}: `{variant}` did not print the documented line {missing!r}; it printed:\n"
                f"{output[-3000:]}"
            )
