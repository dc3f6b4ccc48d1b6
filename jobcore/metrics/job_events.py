"""Job starts and ends for the metrics: one append per hook, applied in aggregate at each flush.

A job's metrics are 7 updates (in-progress up and down, the queue-wait and duration histograms,
the outcome counter), each a label lookup, a bucket search and a lock in prometheus-client: the
Metrics middleware's largest cost per job. Here a hook appends one tuple to a deque (atomic:
no lock), and the flusher of ``jobcore.metrics.batched`` (once a second, and at shutdown)
drains it before writing: counts summed per series, the in-progress gauge moved by its net
change, each histogram's observations counted per bucket and added at once. A scrape lags by
the flush interval, as it did; no count is lost. Without batching (``metrics_flush_ms`` 0) an
event is applied as it comes.
"""

from __future__ import annotations

import bisect
import collections
import os
from collections.abc import Iterable
from typing import Any

from jobcore.metrics import batched
from jobcore.metrics.definitions import DURATION, IN_PROGRESS, JOBS, QUEUE_WAIT, RETRIES

# (actor, queue, wait_s) for a start; (actor, queue, outcome, duration_s) for an end
_events: collections.deque[tuple[Any, ...]] = collections.deque()


def started(actor: str, queue: str, wait_s: float | None) -> None:
    """A delivery started; ``wait_s`` from its enqueue or due time (None when unknown)."""
    _events.append((actor, queue, wait_s))
    if not batched.batching():
        apply()


def ended(actor: str, queue: str, outcome: str, duration_s: float | None) -> None:
    """A delivery ended with ``outcome``; ``duration_s`` None when its start was not counted."""
    _events.append((actor, queue, outcome, duration_s))
    if not batched.batching():
        apply()


def apply() -> None:
    """Drain the queued events into the metrics (the flusher calls it before each write)."""
    drained = []
    while True:
        try:
            drained.append(_events.popleft())
        except IndexError:
            break
    if drained:
        _apply(drained)


def _apply(events: list[tuple[Any, ...]]) -> None:
    running: collections.Counter[tuple[str, str]] = collections.Counter()
    outcomes: collections.Counter[tuple[str, str, str]] = collections.Counter()
    waits: dict[str, list[float]] = collections.defaultdict(list)
    durations: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
    for event in events:
        if len(event) == 3:
            actor, queue, wait_s = event
            running[actor, queue] += 1
            if wait_s is not None:
                waits[queue].append(wait_s)
            continue
        actor, queue, outcome, duration_s = event
        if duration_s is not None:
            running[actor, queue] -= 1
            durations[actor, queue].append(duration_s)
        outcomes[actor, queue, outcome] += 1
    # starts before ends (a batch written between them may show a job in progress that ended,
    # never a count for a job still running), and the outcome counters last
    for (actor, queue), net in running.items():
        if net > 0:
            IN_PROGRESS.labels(actor, queue).inc(net)
    for queue, amounts in waits.items():
        _observe_all(QUEUE_WAIT.labels(queue), amounts)
    for (actor, queue), amounts in durations.items():
        _observe_all(DURATION.labels(actor, queue), amounts)
    for (actor, queue), net in running.items():
        if net < 0:
            IN_PROGRESS.labels(actor, queue).dec(-net)
    for (actor, queue, outcome), count in outcomes.items():
        if outcome == "retried":
            RETRIES.labels(actor, queue).inc(count)
        JOBS.labels(actor, queue, outcome).inc(count)


def _observe_all(histogram: Any, amounts: Iterable[float]) -> None:
    """``observe`` each amount, as one addition per bucket and one to the sum.

    Reads the child's bucket bounds and values (``_upper_bounds``, ``_buckets``, ``_sum``:
    prometheus-client's histogram, pinned in constraints.txt); a client without them gets
    ``observe`` per amount, the same result.
    """
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None:
        for amount in amounts:
            histogram.observe(amount)
        return
    per_bucket: collections.Counter[int] = collections.Counter()
    added = 0.0
    for amount in amounts:
        per_bucket[bisect.bisect_left(bounds, amount)] += 1  # the first bound >= amount
        added += amount
    total.inc(added)
    for index, count in per_bucket.items():
        buckets[index].inc(count)


batched.before_flush(apply)
# a forked child (a Dramatiq worker process) starts empty: the parent's events are its own
os.register_at_fork(after_in_child=_events.clear)
