"""Outgoing webhook notifications: a transactional outbox of events and a dispatcher that posts them.

``events``: what is notified and how a body is rendered (generic JSON, Slack); ``targets``: the configured
webhooks (their URLs are secrets); ``outbox``: enqueueing events and reading deliveries; ``dispatcher``:
claiming due deliveries, posting them, retrying with back-off. Imports stay light: ``mode_store`` enqueues.
"""
