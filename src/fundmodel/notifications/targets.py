"""The outgoing webhooks notifications are posted to (``NOTIFY_WEBHOOKS``), parsed and checked.

A target's URL is a secret (a Slack incoming-webhook URL carries its token in the path): it is held as a
``SecretStr``, used only to send, and never appears in a log line, a metric, an error message or CLI
output. Everything else names a target by its ``name``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from pydantic import SecretStr

MAX_TARGETS = 20
TARGET_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class BodyFormat(StrEnum):
    """``json``: the generic body; ``slack``: ``{"text": ..., "blocks": [...]}`` (incoming webhooks)."""

    JSON = "json"
    SLACK = "slack"

    __hash__ = str.__hash__


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """One configured webhook: shown by ``name`` only."""

    name: str
    url: SecretStr
    body_format: BodyFormat


def parse_webhook_targets(raw: str | None) -> tuple[WebhookTarget, ...]:
    """``NOTIFY_WEBHOOKS``: a JSON list of ``{"name", "url", "format": "json"|"slack"}`` (format optional).

    Raises ValueError with a message that never quotes a URL (it would leak into the one-line
    configuration error)."""
    if raw is None or not raw.strip():
        return ()
    try:
        entries = json.loads(raw)
    except ValueError:
        raise ValueError("NOTIFY_WEBHOOKS is not valid JSON (a list of {name, url, format})") from None
    if not isinstance(entries, list):
        raise ValueError("NOTIFY_WEBHOOKS must be a JSON list of {name, url, format}")
    if len(entries) > MAX_TARGETS:
        raise ValueError(f"NOTIFY_WEBHOOKS: at most {MAX_TARGETS} targets")
    targets: list[WebhookTarget] = []
    for position, entry in enumerate(entries, start=1):
        targets.append(_target(position, entry))
    names = [target.name for target in targets]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"NOTIFY_WEBHOOKS: duplicate target name {', '.join(duplicates)}")
    return tuple(targets)


def _target(position: int, entry: object) -> WebhookTarget:
    where = f"NOTIFY_WEBHOOKS entry {position}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: must be an object {{name, url, format}}")
    unknown = sorted(set(entry) - {"name", "url", "format"})
    if unknown:
        raise ValueError(f"{where}: unknown field {', '.join(map(repr, unknown))[:80]}")
    name = entry.get("name")
    if not isinstance(name, str) or not TARGET_NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"{where}: name must be 1-64 characters of a-z, 0-9, '_', '.', '-' (it labels metrics)"
        )
    url = entry.get("url")
    if not isinstance(url, str) or not _is_http_url(url):
        # The URL itself is never quoted: it is a secret.
        raise ValueError(f"{where} ({name}): url must be an http:// or https:// URL")
    body_format = entry.get("format", BodyFormat.JSON.value)
    if body_format not in {f.value for f in BodyFormat}:
        raise ValueError(f"{where} ({name}): format must be 'json' or 'slack'")
    return WebhookTarget(name, SecretStr(url), BodyFormat(body_format))


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in {"http", "https"} and bool(parts.hostname)
