"""The ``fundmodel`` command line (Typer). Each subcommand group lives in its own module."""
