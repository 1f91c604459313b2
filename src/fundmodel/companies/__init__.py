"""Portfolio companies of a fund and their reserve allocations."""
