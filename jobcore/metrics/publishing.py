"""Producer-side metrics: every publish's confirm latency, and the publishes that failed.

A mixin for the broker class, so every path that publishes (``actor.send``, the outbox after
commit, its relay, retries, the scheduler) is measured in one place. With publisher confirms
on, ``enqueue`` returns once RabbitMQ confirmed the message, so its duration is the confirm
latency as the producer feels it.
"""

from __future__ import annotations

import time
from typing import Any

from jobcore.metrics.definitions import PUBLISH_FAILURES, PUBLISH_SECONDS, PUBLISHED


class PublishMetrics:
    """Put before the broker class: ``class B(PublishMetrics, RabbitmqBroker)``."""

    def declare_queue(self, queue_name: str, **kwargs: Any) -> None:
        """Declare, and start the queue's publish series at 0.

        A labelled counter appears only once it is touched: without this, a producer that never
        failed exports no ``publish_failures_total`` at all, and an alert or a ratio on it has
        nothing to evaluate (the panel shows "No data" instead of 0).
        """
        super().declare_queue(queue_name, **kwargs)  # type: ignore[misc]
        if not queue_name.endswith((".DQ", ".XQ")):
            PUBLISH_FAILURES.labels(queue_name)
            PUBLISHED.labels(queue_name)

    def enqueue(self, message: Any, *, delay: int | None = None) -> Any:
        queue = message.queue_name.removesuffix(".DQ")
        start = time.perf_counter()
        try:
            result = super().enqueue(message, delay=delay)  # type: ignore[misc]
        except Exception:
            PUBLISH_FAILURES.labels(queue).inc()
            raise
        PUBLISH_SECONDS.labels(queue).observe(time.perf_counter() - start)
        PUBLISHED.labels(queue).inc()
        return result
