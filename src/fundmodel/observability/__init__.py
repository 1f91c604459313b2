"""Observability: Prometheus metrics, JSON logs, offender sampling, Alertmanager webhook parsing.

Nothing here is built at import time: the app creates a ``ServiceMetrics`` on its own registry,
calls ``configure_logging`` once at start-up and owns its ``OffenderLogSampler``.
"""
