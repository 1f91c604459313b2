"""Portfolio strategies: named stage allocations, always stored canonical."""
