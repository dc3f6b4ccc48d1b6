"""No-op actors on the full shopjobs middleware stack (ledger included), for bench/ledger_overhead.py:
one that does nothing, one that sends one follow-up (what durable sends cost shows there)."""

from __future__ import annotations

import importlib
import os

import dramatiq

import broker  # noqa: F401  (the project's broker and middleware stack)
from bench import _anchor  # noqa: F401  (puts ../shared/anchor-bench, home of benchlib, on sys.path)

# imported by name after _anchor: an import statement would be sorted above it by the linter
Counter = importlib.import_module("benchlib").Counter

QUEUE = "bench_shop"
counter = Counter(os.environ.get("BENCH_COUNTER_DIR", "/tmp/bench_counters/shopjobs"))


@dramatiq.actor(actor_name="bench.noop", queue_name=QUEUE, max_retries=0)
def noop(order_id: int, kind: str, attempt: int = 0) -> None:
    counter.incr()


@dramatiq.actor(actor_name="bench.hand_on", queue_name=QUEUE, max_retries=0)
def hand_on(order_id: int, kind: str) -> None:
    """A pipeline step's shape: done, then one follow-up sent from inside the job."""
    counter.incr()
    noop.send(order_id, kind)
