"""The README lists every command, each listed command answers ``--help``, and docs/api.md states the form of
the problem ``type`` URNs that the API really sends."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fundmodel.api.problems import problem_type
from fundmodel.cli.main import app
from fundmodel.errors import (
    ConfigurationError,
    FundmodelError,
    InvalidInputError,
    InvalidStageDistributionError,
    InvalidStageError,
    MalformedStageInputError,
    StoreUnavailableError,
)
from tests.cli.test_startup import leaf_commands
from tests.docs.test_docs_set import section

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
API = ROOT / "docs" / "api.md"


def readme_commands() -> list[str]:
    return re.findall(r"`fundmodel ([a-z][a-z -]*[a-z])`", section(README, "Command line"))


def test_the_readme_lists_every_command_once() -> None:
    listed = readme_commands()
    assert sorted(listed) == sorted(set(listed)), "a command is listed twice"
    assert set(listed) == set(leaf_commands())


@pytest.mark.parametrize("command", readme_commands())
def test_every_command_the_readme_lists_answers_help(command: str) -> None:
    result = CliRunner().invoke(app, [*command.split(), "--help"])
    assert result.exit_code == 0, result.output
    assert f"Usage: fundmodel {command}" in " ".join(result.output.split())


def documented_problem_type(code: str) -> str:
    """The rule docs/api.md states in words, applied to ``code``."""
    text = " ".join(API.read_text(encoding="utf-8").split())
    assert "`type` (`urn:fundmodel:problem:` + the `code` in lower case with `_` written as `-`" in text, (
        "docs/api.md no longer states the problem type rule this test applies"
    )
    example = re.search(r"`INVALID_STAGE` has the type `(urn:fundmodel:problem:[a-z-]+)`", text)
    assert example is not None
    assert example.group(1) == problem_type("INVALID_STAGE")
    return "urn:fundmodel:problem:" + code.lower().replace("_", "-")


@pytest.mark.parametrize(
    "error",
    [
        FundmodelError,
        InvalidInputError,
        MalformedStageInputError,
        InvalidStageError,
        InvalidStageDistributionError,
        ConfigurationError,
        StoreUnavailableError,
    ],
)
def test_problem_types_have_the_documented_form(error: type[FundmodelError]) -> None:
    assert problem_type(error.code) == documented_problem_type(error.code)
    assert re.fullmatch(r"urn:fundmodel:problem:[a-z0-9]+(-[a-z0-9]+)*", problem_type(error.code))
