"""A no-op actor on the full shopjobs middleware stack (ledger included), for bench/ledger_overhead.py."""

from __future__ import annotations

import os

import dramatiq
from benchlib import Counter  # type: ignore[import-not-found]

import broker  # noqa: F401  (the project's broker and middleware stack)
from bench import _anchor  # noqa: F401

QUEUE = "bench_shop"
counter = Counter(os.environ.get("BENCH_COUNTER_DIR", "/tmp/bench_counters/shopjobs"))


@dramatiq.actor(actor_name="bench.noop", queue_name=QUEUE, max_retries=0)
def noop(order_id: int, kind: str, attempt: int = 0) -> None:
    counter.incr()
