"""Funds: the top-level entity companies and allocations belong to."""
