"""Entry point of the ``fundmodel`` command: assembles the subcommand groups.

Errors from fundmodel's exception tree leave as one line on stderr with a non-zero exit code (2 for bad
input or usage, 1 otherwise), never as a traceback.
"""

from __future__ import annotations

import sys

import typer

from fundmodel.cli import db as db_cli
from fundmodel.cli import db_ops as db_ops_cli
from fundmodel.cli import demo
from fundmodel.cli import keys as keys_cli
from fundmodel.cli import mode as mode_cli
from fundmodel.cli import rollout as rollout_cli
from fundmodel.cli import serve as serve_cli
from fundmodel.cli import simulate as simulate_cli
from fundmodel.errors import FundmodelError, InvalidInputError

app = typer.Typer(
    name="fundmodel",
    help="Venture-capital fund modeling with a safe rollout of strict stage validation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
demo.register(app)
serve_cli.register(app)
keys_cli.register(app)
mode_cli.register(app)
rollout_cli.register(app)
simulate_cli.register(app)

db_group = db_cli.create_db_group()
db_ops_cli.register_db_ops(db_group)
app.add_typer(db_group, name="db")

USAGE_EXIT_CODE = 2
FAILURE_EXIT_CODE = 1


def exit_code_for(error: FundmodelError) -> int:
    return USAGE_EXIT_CODE if isinstance(error, InvalidInputError) else FAILURE_EXIT_CODE


def main() -> None:
    try:
        app()
    except FundmodelError as error:
        print(f"error: {error.detail}", file=sys.stderr)
        sys.exit(exit_code_for(error))
