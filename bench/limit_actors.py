"""Actors for bench/limits.py: the same no-op job plain, under a concurrency limit, under a rate."""

from __future__ import annotations

import dramatiq

import broker  # noqa: F401  (the project's broker and middleware stack)
from jobcore.limits import ConcurrencyLimit, RateLimit

QUEUE = "bench_limits"
# far above what 2 x 8 threads can reach: the bench measures the cost, never a wait
SLOTS = ConcurrencyLimit("bench.slots", 64, wait_ms=60_000)
RATE = RateLimit("bench.rate", 1_000_000, wait_ms=60_000)


@dramatiq.actor(actor_name="bench.plain", queue_name=QUEUE, max_retries=0)
def plain(n: int) -> None:
    """The baseline: a job that does nothing."""


@dramatiq.actor(actor_name="bench.slot", queue_name=QUEUE, max_retries=0)
def slot(n: int) -> None:
    """Holds a slot of a global concurrency limit (lease and release: two statements)."""
    with SLOTS.hold():
        pass


@dramatiq.actor(actor_name="bench.rated", queue_name=QUEUE, max_retries=0)
def rated(n: int) -> None:
    """Takes a token of a global rate (one statement)."""
    RATE.take()
