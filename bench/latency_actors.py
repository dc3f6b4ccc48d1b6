"""The latency bench's actor, on bare Dramatiq or on the shopjobs stack (``BENCH_LATENCY_SIDE``).

Each start appends ``<run> start - sent_at`` (seconds; ``sent_at`` is the sender's clock right before
its ``send`` call) to a file per worker process.
"""

from __future__ import annotations

import os
import threading
import time

import dramatiq

SIDE = os.environ.get("BENCH_LATENCY_SIDE", "shop")
QUEUE = f"bench_latency_{SIDE}"
OUT_DIR = os.environ.get("BENCH_LATENCY_DIR", f"/tmp/bench_latency/{SIDE}")

if SIDE == "bare":
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    dramatiq.set_broker(
        RabbitmqBroker(
            url=os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
            confirm_delivery=True,
        )
    )
else:
    import broker  # noqa: F401  (the project's broker and middleware stack)

_lock = threading.Lock()
_files: dict[int, object] = {}


def _out() -> object:
    pid = os.getpid()
    fh = _files.get(pid)
    if fh is None:
        os.makedirs(OUT_DIR, exist_ok=True)
        fh = _files[pid] = open(os.path.join(OUT_DIR, str(pid)), "a", buffering=1)  # noqa: SIM115
    return fh


@dramatiq.actor(actor_name="bench.latency", queue_name=QUEUE, max_retries=0)
def started(sent_at: float, run: str) -> None:
    lag = time.time() - sent_at
    with _lock:
        _out().write(f"{run} {lag:.6f}\n")  # type: ignore[attr-defined]
