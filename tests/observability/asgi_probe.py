"""A minimal ASGI app for the gunicorn multi-worker metrics test (not part of the product).

``POST /hit`` records one validation in this worker and answers its pid; ``GET /metrics`` answers
``render_metrics`` (merged over all workers via PROMETHEUS_MULTIPROC_DIR). The ServiceMetrics is
built at lifespan start-up, i.e. in each worker after the fork, as the real app does. ``/hit``
blocks its worker briefly on purpose so concurrent requests spread over the workers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry

from fundmodel.observability.metrics import ServiceMetrics, render_metrics

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ProbeApp:
    def __init__(self) -> None:
        self.registry: CollectorRegistry | None = None
        self.metrics: ServiceMetrics | None = None

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["path"] == "/hit" and self.metrics is not None:
            time.sleep(0.02)
            self.metrics.observe_validation(
                "/api/monte-carlo/simulate", "enforce", "rejected", "canary", 0.0001
            )
            await self._respond(send, 200, str(os.getpid()).encode(), "text/plain")
        elif scope["path"] == "/metrics":
            body, content_type = render_metrics(self.registry)
            await self._respond(send, 200, body, content_type)
        else:
            await self._respond(send, 404, b"", "text/plain")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.registry = CollectorRegistry()
                self.metrics = ServiceMetrics(self.registry)
                self.metrics.set_mode("enforce", 10.0)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    @staticmethod
    async def _respond(send: Send, status: int, body: bytes, content_type: str) -> None:
        headers = [(b"content-type", content_type.encode()), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def create_app() -> ProbeApp:
    return ProbeApp()
