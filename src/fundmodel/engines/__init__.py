"""Simulation engines: pure numerical cores with no I/O, wrapped by the API and the CLI."""
