"""Monte Carlo at the edges: request schemas, limits, running the engine, the per-fund CSV table."""
