"""The HTTP API (FastAPI): thin routes over the domain services, one error envelope, one validation layer."""
