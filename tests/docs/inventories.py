"""What the code says exists, taken from the running objects rather than from any list kept by hand.

Endpoints from the OpenAPI document of a freshly created app, metrics from that app's registry, problem
codes from the exception tree plus every ``code="..."`` and ``problem_response(status, CODE, ...)`` in
src/, environment variables from the Settings class and the CLI's ``envvar=`` options, and commands and
flags from Typer's command tree.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from functools import cache
from http import HTTPStatus
from pathlib import Path
from typing import Any

import typer
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from fundmodel.api.app import create_app
from fundmodel.api.problems import status_for
from fundmodel.cli.main import app as cli_app
from fundmodel.errors import FundmodelError
from fundmodel.settings import Settings, load_settings

SRC = Path(__file__).resolve().parents[2] / "src" / "fundmodel"
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
CODE_LIKE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$|^[A-Z]{3,}$")
# OpenAPI's own pages: served by FastAPI, not part of the API a client programs against.
_FRAMEWORK_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})


# Never opened: creating the app builds routes and metrics only; the lifespan (not run here) connects.
_UNOPENED_DATABASE = "sqlite:///var/docs-check-never-opened.sqlite3"


@cache
def app_and_registry() -> tuple[FastAPI, CollectorRegistry]:
    """An app as ``fundmodel serve`` builds it, with a fresh registry (lifespan not started)."""
    registry = CollectorRegistry()
    settings = load_settings(database_url=_UNOPENED_DATABASE, log_level="WARNING")
    return create_app(settings, registry=registry, configure_logs=False), registry


def openapi() -> dict[str, Any]:
    document: dict[str, Any] = app_and_registry()[0].openapi()
    return document


def endpoints() -> set[tuple[str, str]]:
    """``(METHOD, /path/{param})`` of every operation in the OpenAPI document."""
    return {
        (method.upper(), path)
        for path, operations in openapi()["paths"].items()
        if path not in _FRAMEWORK_PATHS
        for method in operations
        if method in HTTP_METHODS
    }


def metric_names() -> dict[str, str]:
    """Metric family name as exposed (counters with ``_total``) -> its type."""
    names: dict[str, str] = {}
    for family in app_and_registry()[1].collect():
        exposed = f"{family.name}_total" if family.type == "counter" else family.name
        names[exposed] = family.type
    return names


def metric_labels() -> dict[str, set[str]]:
    """Metric family name as exposed -> its label names (histograms' ``le`` left out)."""
    labels: dict[str, set[str]] = {}
    for family in app_and_registry()[1].collect():
        exposed = f"{family.name}_total" if family.type == "counter" else family.name
        labels[exposed] = {
            name for sample in family.samples for name in sample.labels if name not in {"le", "quantile"}
        }
    return labels


def sample_names() -> set[str]:
    """Every series name a scrape can show: families plus ``_bucket``/``_sum``/``_count``/``_created``."""
    names: set[str] = set()
    for family in app_and_registry()[1].collect():
        names.add(f"{family.name}_total" if family.type == "counter" else family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "histogram":
            names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count", "_created"))
    return names


def _subclasses(base: type[FundmodelError]) -> Iterator[type[FundmodelError]]:
    for subclass in base.__subclasses__():
        yield subclass
        yield from _subclasses(subclass)


# Statuses Starlette itself answers with, which the HTTP edge turns into codes from the reason phrase
# (api/problems.py `_handle_http_exception`): an unknown path, a method the path does not serve.
ROUTING_STATUSES = (HTTPStatus.NOT_FOUND, HTTPStatus.METHOD_NOT_ALLOWED)


def problem_codes() -> dict[str, str]:
    """Every stable error code -> where it is defined (see :func:`problem_code_statuses`)."""
    return {code: where for code, (where, _) in _codes_with_status().items()}


def problem_code_statuses() -> dict[str, int]:
    """Every stable error code -> its HTTP status (500 for errors only commands raise)."""
    return {code: status for code, (_, status) in _codes_with_status().items()}


@cache
def _codes_with_status() -> dict[str, tuple[str, int]]:
    """The exception tree's codes (the abstract base's ``FUNDMODEL_ERROR`` is never raised as such), every
    literal ``code="..."`` keyword in src/ (status of the error class it is passed to), the codes the HTTP
    edge writes directly with ``problem_response(status, CODE, ...)`` (a literal or a module-level
    constant), and the routing statuses' codes."""
    error_classes = {cls.__name__: cls for cls in _subclasses(FundmodelError)}
    codes: dict[str, tuple[str, int]] = {
        cls.code: (f"errors.py:{name}", status_for(cls("docs-check"))) for name, cls in error_classes.items()
    }
    for status in ROUTING_STATUSES:
        codes[status.phrase.upper().replace(" ", "_")] = ("api/problems.py (routing)", int(status))
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = _module_string_constants(tree)
        where = str(path.relative_to(SRC.parent))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            called = _called_name(node)
            for keyword in node.keywords:
                value = _string(keyword.value, constants)
                if keyword.arg == "code" and value and CODE_LIKE.match(value) and called in error_classes:
                    raised_status = status_for(error_classes[called]("docs-check"))
                    codes.setdefault(value, (f"{where}:{node.lineno}", raised_status))
            if called == "problem_response" and len(node.args) >= 2:
                value = _string(node.args[1], constants)
                first = node.args[0]
                literal = first.value if isinstance(first, ast.Constant) else None
                if value and CODE_LIKE.match(value) and isinstance(literal, int):
                    codes.setdefault(value, (f"{where}:{node.lineno}", literal))
    return codes


def _module_string_constants(tree: ast.Module) -> dict[str, str]:
    constants: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                    constants[target.id] = node.value.value
    return constants


def _string(node: ast.expr, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    return None


def _called_name(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def settings_variables() -> dict[str, Any]:
    """Environment variable -> default, for every field of the one Settings class."""
    return {name.upper(): field.default for name, field in Settings.model_fields.items()}


def cli_envvars() -> dict[str, tuple[str, str]]:
    """Environment variables CLI options read (``envvar=``) -> (command, option)."""
    found: dict[str, tuple[str, str]] = {}
    for path, command in cli_commands().items():
        for param in command.params:
            envvars = param.envvar if isinstance(param.envvar, list | tuple) else [param.envvar]
            for envvar in envvars:
                if envvar:
                    found.setdefault(envvar, (path, param.opts[0]))
    return found


def _is_group(command: Any) -> bool:
    # Typer vendors its own Click: duck-type groups by their ``commands`` mapping.
    return hasattr(command, "commands") and callable(getattr(command.commands, "keys", None))


def cli_commands() -> dict[str, Any]:
    """``"db normalize-stages"`` -> the (Click) command, for every runnable command of ``fundmodel``."""
    found: dict[str, Any] = {}

    def walk(command: Any, path: list[str]) -> None:
        if _is_group(command):
            for name in list(command.commands.keys()):
                walk(command.commands[name], [*path, name])
        else:
            found[" ".join(path)] = command

    walk(typer.main.get_command(cli_app), [])
    return found


def cli_flags() -> dict[str, set[str]]:
    """Command path -> its long options (``--help`` left out: every command has it)."""
    return {
        path: {
            option
            for param in command.params
            for option in (*param.opts, *param.secondary_opts)
            if option.startswith("--") and option != "--help"
        }
        for path, command in cli_commands().items()
    }


def cli_metavars() -> set[str]:
    """Upper-case placeholders the help shows (``RUN_ID``, ``FILE``): docs may use them as names."""
    names: set[str] = set()
    for command in cli_commands().values():
        for param in command.params:
            for candidate in (getattr(param, "metavar", None), getattr(param, "name", "").upper()):
                if candidate and CODE_LIKE.match(candidate):
                    names.add(candidate)
    return names


def source_constant_names() -> set[str]:
    """Upper-case names and string literals anywhere in src/ (constants, enum members, literal codes)."""
    names: set[str] = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            text = node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ""
            if isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name) and CODE_LIKE.match(t.id))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                if CODE_LIKE.match(node.target.id):
                    names.add(node.target.id)
            elif text and CODE_LIKE.match(text):
                names.add(text)
    return names
