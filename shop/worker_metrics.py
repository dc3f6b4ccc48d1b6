"""The fork function that serves a worker instance's metrics with the shop's settings and queues."""

from __future__ import annotations

from jobcore.metrics.exposition import serve_worker_metrics
from shop.ops.freshness import FreshnessCollector
from shop.queues import Queue
from shop.settings import Settings


def serve() -> int:
    """Started by Dramatiq in its own process (``Metrics.forks``): serve until SIGTERM."""
    settings = Settings.from_env()
    freshness = FreshnessCollector(settings.psycopg_dsn)
    return serve_worker_metrics(settings, [queue.value for queue in Queue], [freshness])
