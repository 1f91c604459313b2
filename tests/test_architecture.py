"""The core (stages, validation policy, engines) stays pure: an allow-list of what it may import.

The pure core is ``fundmodel.stages``, ``fundmodel.validation``, ``fundmodel.engines`` and the exception
tree ``fundmodel.errors`` (plus the bare ``fundmodel`` package). It may import only:

* the standard library, except modules whose job is I/O, processes or logging (``DENIED_STDLIB``);
  ``os`` only where a module needs it for a stated reason (``STDLIB_EXCEPTIONS``);
* its own core packages;
* ``ALLOWED_THIRD_PARTY``: numpy, numba, pydantic, rapidfuzz.

Two checks: a static one over every ``import`` in the core's source (function-level and
``TYPE_CHECKING`` imports included: the allow-list is about what the code depends on), and a run-time one
that imports every core module in a fresh interpreter and compares ``sys.modules`` with what the allowed
libraries load on their own (which catches an import hidden behind ``importlib`` or a re-export).
A third check keeps module-level state of the core immutable (it is shared by every request and thread).
"""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import fundmodel

PACKAGE_ROOT = Path(fundmodel.__file__).parent
CORE_PACKAGES = ("fundmodel.stages", "fundmodel.validation", "fundmodel.engines")
CORE_MODULES = frozenset({"fundmodel", "fundmodel.errors"})
ALLOWED_THIRD_PARTY = frozenset({"numpy", "numba", "pydantic", "rapidfuzz"})
DENIED_STDLIB = frozenset(
    {
        # network and protocols
        "socket", "ssl", "select", "selectors", "asyncio", "http", "urllib", "ftplib", "smtplib",
        "imaplib", "poplib", "telnetlib", "xmlrpc", "socketserver", "wsgiref", "webbrowser",
        # processes, signals, foreign code
        "subprocess", "multiprocessing", "signal", "pty", "ctypes", "os",
        # files and databases (bundled data is read through importlib.resources)
        "sqlite3", "dbm", "shelve", "tempfile", "shutil", "glob", "fileinput", "pathlib", "zipfile",
        "tarfile", "mmap",
        # logging belongs to observability/
        "logging", "syslog",
    }
)  # fmt: skip
STDLIB_EXCEPTIONS = {
    # runner.default_threads(): os.sched_getaffinity / os.cpu_count, to size the thread pool.
    "os": frozenset({"fundmodel.engines.montecarlo.runner"}),
}


def core_source_files() -> list[tuple[str, Path]]:
    files = [("fundmodel", PACKAGE_ROOT / "__init__.py"), ("fundmodel.errors", PACKAGE_ROOT / "errors.py")]
    for package in CORE_PACKAGES:
        directory = PACKAGE_ROOT.joinpath(*package.split(".")[1:])
        for path in sorted(directory.rglob("*.py")):
            parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            files.append((name, path))
    return files


def core_module_names() -> list[str]:
    names = [*sorted(CORE_MODULES)]
    for package in CORE_PACKAGES:
        module = importlib.import_module(package)
        names.append(package)
        names.extend(info.name for info in pkgutil.walk_packages(module.__path__, f"{package}."))
    return names


def is_core(name: str) -> bool:
    return name in CORE_MODULES or any(name == core or name.startswith(f"{core}.") for core in CORE_PACKAGES)


def verdict(imported: str, importer: str) -> str | None:
    """Why ``importer`` may not import module ``imported``, or None when it may."""
    if imported == "<dynamic import>":
        return "an import whose module name is computed, which the allow-list cannot check"
    top = imported.split(".")[0]
    if top == "__future__":
        return None
    if top == "fundmodel":
        return None if is_core(imported) else "a fundmodel layer outside the pure core"
    if top in sys.stdlib_module_names:
        if top in DENIED_STDLIB and importer not in STDLIB_EXCEPTIONS.get(top, frozenset()):
            return "an I/O, process or logging module of the standard library"
        return None
    if top in ALLOWED_THIRD_PARTY:
        return None
    return "a third-party library outside the core's allow-list"


def imported_modules(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """Every module an import statement (or a literal ``import_module``) names, with its line."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            found.append((node.lineno, source))
            # `from fundmodel import settings` imports a module: check it, not just the package.
            if source.split(".")[0] == "fundmodel":
                for alias in node.names:
                    candidate = PACKAGE_ROOT.joinpath(*source.split(".")[1:], alias.name)
                    if candidate.with_suffix(".py").is_file() or candidate.is_dir():
                        found.append((node.lineno, f"{source}.{alias.name}"))
        elif isinstance(node, ast.Call):
            function = node.func
            name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
            if name in {"import_module", "__import__"}:
                argument = node.args[0] if node.args else None
                if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                    found.append((node.lineno, argument.value))
                else:
                    found.append((node.lineno, "<dynamic import>"))
    return found


@pytest.mark.parametrize(
    ("imported", "allowed"),
    [
        ("math", True),
        ("tomllib", True),
        ("importlib.resources", True),
        ("numpy.typing", True),
        ("pydantic.alias_generators", True),
        ("rapidfuzz.distance", True),
        ("fundmodel.stages.taxonomy", True),
        ("fundmodel.errors", True),
        ("fundmodel.settings", False),
        ("fundmodel.funds.service", False),
        ("fundmodel.companies", False),
        ("fundmodel.portfolio.models", False),
        ("fundmodel.simulations", False),
        ("fundmodel.auth", False),
        ("fundmodel.apimodel", False),
        ("fundmodel.pagination", False),
        ("fundmodel.db.tables", False),
        ("matplotlib.pyplot", False),
        ("rich.table", False),
        ("uvicorn", False),
        ("alembic", False),
        ("sqlalchemy", False),
        ("fastapi", False),
        ("httpx", False),
        ("socket", False),
        ("sqlite3", False),
        ("subprocess", False),
        ("http.client", False),
        ("urllib.request", False),
        ("logging.handlers", False),
        ("os", False),
        ("<dynamic import>", False),
    ],
)
def test_the_allow_list_itself(imported: str, allowed: bool) -> None:
    assert (verdict(imported, "fundmodel.stages.normalizer") is None) is allowed


def test_os_is_allowed_only_where_stated() -> None:
    assert verdict("os", "fundmodel.engines.montecarlo.runner") is None
    assert verdict("os", "fundmodel.engines.montecarlo.cashflows") is not None


def test_relative_and_from_imports_are_resolved() -> None:
    tree = ast.parse(
        "from . import taxonomy\nfrom ..errors import StageError\nfrom fundmodel import settings\n"
    )
    names = {name for _, name in imported_modules(tree, "fundmodel.stages.normalizer", is_package=False)}
    assert {"fundmodel.stages", "fundmodel.errors", "fundmodel.settings"} <= names


def test_every_core_import_is_on_the_allow_list() -> None:
    files = core_source_files()
    assert len(files) > 20  # the walk found the core
    problems = []
    for module, path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, imported in imported_modules(tree, module, is_package=path.name == "__init__.py"):
            reason = verdict(imported, module)
            if reason is not None:
                problems.append(f"{path.relative_to(PACKAGE_ROOT.parent)}:{line}: {imported} ({reason})")
    assert problems == []


_PROBE = """
import importlib, json, sys, sysconfig
from pathlib import Path

STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()
SITE = {Path(p).resolve() for p in (sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"])}

def outside_stdlib(name):
    if name.split(".")[0] in sys.stdlib_module_names:
        return False
    origin = getattr(sys.modules[name], "__file__", None)
    if origin is None:
        return True
    path = Path(origin).resolve()
    return not path.is_relative_to(STDLIB) or any(path.is_relative_to(site) for site in SITE)

for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
{extra}
print(json.dumps(sorted(name for name in list(sys.modules) if outside_stdlib(name))))
"""

# What the allowed libraries load by themselves when used (numba's optional YAML config reader,
# pydantic's annotated_types, Cython runtime modules, ...).
_BASELINE_USE = """
from typing import Annotated
import pydantic
class Probe(pydantic.BaseModel):
    value: Annotated[float, pydantic.Field(ge=0.0)] = 1.0
Probe(value=2.0)
"""


def _loaded_outside_stdlib(modules: list[str], extra: str = "") -> set[str]:
    probe = _PROBE.replace("{extra}", extra)
    completed = subprocess.run(
        [sys.executable, "-c", probe, json.dumps(modules)], capture_output=True, text=True, check=True
    )
    loaded: set[str] = set(json.loads(completed.stdout))
    return loaded


def test_importing_the_core_loads_nothing_beyond_the_allowed_libraries() -> None:
    core = core_module_names()
    baseline = _loaded_outside_stdlib(sorted(ALLOWED_THIRD_PARTY), _BASELINE_USE)
    loaded = _loaded_outside_stdlib(core)
    assert set(core) <= loaded
    layers = sorted(name for name in loaded if name.split(".")[0] == "fundmodel" and not is_core(name))
    assert layers == []
    # Compare packages, not submodules: which parts of an allowed library load depends on what is used.
    extra = sorted({name.split(".")[0] for name in loaded if name.split(".")[0] != "fundmodel"})
    allowed = {name.split(".")[0] for name in baseline}
    assert [name for name in extra if name not in allowed] == []


MUTABLE_TYPES = (dict, list, set, bytearray)


def test_core_module_state_is_immutable() -> None:
    problems = []
    for name in core_module_names():
        module = importlib.import_module(name)
        for attribute, value in vars(module).items():
            if attribute.startswith("__") or isinstance(value, types.ModuleType):
                continue
            if isinstance(value, MUTABLE_TYPES) or (isinstance(value, np.ndarray) and value.flags.writeable):
                problems.append(f"{name}.{attribute}: {type(value).__name__}")
    assert problems == []


def test_stage_labels_are_read_only() -> None:
    from fundmodel.stages import STAGE_LABELS, Stage

    with pytest.raises(TypeError):
        STAGE_LABELS[Stage.SEED] = "Changed"  # type: ignore[index]
    assert STAGE_LABELS[Stage.SEED] == "Seed"
    assert Stage.SERIES_D.label == "Series D+"


def test_architecture_doc_places_every_module() -> None:
    """docs/architecture.md names every module of the package (migration versions: as `migrations/`)."""
    doc = (PACKAGE_ROOT.parents[1] / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = []
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        relative = path.relative_to(PACKAGE_ROOT)
        if relative.parts[:2] == ("db", "migrations"):
            continue
        shown = f"`{path.name}`" if path.name != "__init__.py" or len(relative.parts) == 1 else None
        if shown is None:
            continue  # a package: its directory is in the drawing and the table
        if shown not in doc:
            missing.append(str(relative))
    assert "`migrations/`" in doc
    assert missing == []
