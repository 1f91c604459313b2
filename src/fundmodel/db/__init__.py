"""Persistence: SQLAlchemy Core tables, the engine factory, Alembic migrations and the mode store."""
