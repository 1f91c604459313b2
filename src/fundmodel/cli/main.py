"""Entry point of the ``fundmodel`` command: assembles the subcommand groups.

Each top-level command's module is imported only when that command runs (or when ``fundmodel --help``
lists them all): ``fundmodel mode get`` during an incident must not wait for Numba, NumPy or the web
stack that ``simulate`` and ``serve`` need. ``tests/cli/test_startup.py`` holds every command to that.

Every command checks the settings before it runs, so an invalid environment variable stops it with one
line whether or not the command reads that variable; ``--help`` works regardless.

Expected failures (fundmodel's exception tree, database and operating-system errors) leave as one line on
stderr with the exit code of ``cli/common.exit_code_for``, the one mapping of every command (2 for usage
or configuration errors, 1 otherwise), never as a traceback.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any

import typer
from typer._click import Command, Context
from typer.core import TyperGroup, TyperOption

LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    # top-level name: (module, function that registers it on a Typer app), in `--help` order
    "demo": ("fundmodel.cli.demo", "register"),
    "normalize": ("fundmodel.cli.demo", "register"),
    "serve": ("fundmodel.cli.serve", "register"),
    "keys": ("fundmodel.cli.keys", "register"),
    "mode": ("fundmodel.cli.mode", "register"),
    "rollout": ("fundmodel.cli.rollout", "register"),
    "simulate": ("fundmodel.cli.simulate", "register"),
    "sweep": ("fundmodel.cli.sweep", "register"),
    "sensitivity": ("fundmodel.cli.sweep", "register"),
    "backsolve": ("fundmodel.cli.sweep", "register"),
    "db": ("fundmodel.cli.db", "register"),
    "notifications": ("fundmodel.cli.notifications", "register"),
}


def _hide_flag_types(command: Command) -> None:
    """No ``<bool>`` after ``--json`` and other flags in ``--help``: they take no value.

    Typer's Rich help prints every option's type unless the option has a metavar, flags included.
    """
    # The help option is built on first use; building it now (cached on the command) lets it be fixed too.
    help_option = command.get_help_option(Context(command))
    for param in [*command.params, *([help_option] if help_option is not None else [])]:
        if isinstance(param, TyperOption) and param.is_flag:
            param.metavar = ""


def _check_settings_first(command: Command) -> None:
    """Make ``command`` read the settings before it does anything else (never for ``--help``)."""
    callback = command.callback
    if callback is None:
        return

    @functools.wraps(callback)
    def checked(*args: Any, **kwargs: Any) -> Any:
        from fundmodel.settings import get_settings

        get_settings()  # raises ConfigurationError naming the variable
        return callback(*args, **kwargs)

    command.callback = checked


def _prepare(command: Command) -> None:
    """Fix ``command`` and every command under it: flag help, settings checked before running."""
    _hide_flag_types(command)
    subcommands = getattr(command, "commands", None)
    if isinstance(subcommands, Mapping):
        for subcommand in subcommands.values():
            _prepare(subcommand)
    else:
        _check_settings_first(command)


@functools.cache
def _load_command(name: str) -> Command:
    module_name, register_name = LAZY_COMMANDS[name]
    register: Callable[[typer.Typer], None] = getattr(importlib.import_module(module_name), register_name)
    holder = typer.Typer()
    register(holder)
    command = typer.main.get_group(holder).commands[name]
    _prepare(command)
    return command


class _LazyCommands(MutableMapping[str, Command]):
    """The root group's commands, each built (and its module imported) on first access."""

    def __init__(self, eager: MutableMapping[str, Command]) -> None:
        self._eager = eager

    def __getitem__(self, name: str) -> Command:
        if name in self._eager:
            return self._eager[name]
        if name in LAZY_COMMANDS:
            return _load_command(name)
        raise KeyError(name)

    def __setitem__(self, name: str, command: Command) -> None:
        self._eager[name] = command

    def __delitem__(self, name: str) -> None:
        del self._eager[name]

    def __iter__(self) -> Iterator[str]:
        yield from LAZY_COMMANDS
        yield from (name for name in self._eager if name not in LAZY_COMMANDS)

    def __len__(self) -> int:
        return len(LAZY_COMMANDS.keys() | self._eager.keys())


class LazyGroup(TyperGroup):
    """A Typer group whose commands come from :data:`LAZY_COMMANDS`, imported when first needed."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        _hide_flag_types(self)
        self.commands = _LazyCommands(self.commands)

    def list_commands(self, ctx: Context) -> list[str]:
        # Names only: TyperGroup's own version iterates items(), which would import every module.
        return list(self.commands.keys())


app = typer.Typer(
    name="fundmodel",
    cls=LazyGroup,
    help="Venture-capital fund modeling with a safe rollout of strict stage validation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    # A callback makes Typer build a group even though no command is registered eagerly.
    pass


def main() -> None:
    try:
        app()
    except Exception as error:
        # Imported on failure only: cli/common loads SQLAlchemy, which `fundmodel demo` never needs.
        from fundmodel.cli.common import EXPECTED_FAILURES, error_line, exit_code_for

        if not isinstance(error, EXPECTED_FAILURES):
            raise  # a bug: its traceback is what a report needs
        print(f"error: {error_line(error)}", file=sys.stderr)
        sys.exit(exit_code_for(error))
