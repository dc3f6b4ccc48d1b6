"""The fork function that serves a worker instance's metrics with the shop's settings and queues."""

from __future__ import annotations

from jobcore.metrics.exposition import serve_worker_metrics
from shop.queues import Queue
from shop.settings import Settings


def serve() -> int:
    """Started by Dramatiq in its own process (``Metrics.forks``): serve until SIGTERM."""
    return serve_worker_metrics(Settings.from_env(), [queue.value for queue in Queue])
