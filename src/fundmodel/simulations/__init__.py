"""Monte Carlo over HTTP: request schemas, limits and running the engine off the event loop."""
