"""Metrics: counts, times and gauges every delivery, in Prometheus' multiprocess files.

The values add up in process memory and reach the files once a second
(``jobcore.metrics.batched``); this middleware writes the last ones at worker shutdown.

Sits high in the stack (below LogContext and DbSessions): its ``before_process_message`` runs
before the other middleware, so the duration includes theirs, and its ``after_*`` hooks run
after Retries has decided, so a failed attempt is counted as retried or failed correctly.
Its fork serves the whole instance's metrics (``jobcore.metrics.exposition``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from dramatiq import Broker, Middleware
from dramatiq.broker import MessageProxy

from jobcore.metrics import batched
from jobcore.metrics.definitions import (
    DEAD_LETTERS,
    DURATION,
    IN_PROGRESS,
    JOBS,
    QUEUE_WAIT,
    RETRIES,
)
from jobcore.metrics.failures import counts_failures
from jobcore.settings import JobSettings
from middleware.cancellations import CANCELLED_ATTRIBUTE
from middleware.dead_letters import reason_for

_STARTED = "shopjobs_metrics_started"


@functools.lru_cache(maxsize=1024)
def _series(actor: str, queue: str) -> tuple[Any, Any, Any]:
    """The (in-progress, duration, queue-wait) children of an actor: ``labels()`` costs a lock each."""
    return IN_PROGRESS.labels(actor, queue), DURATION.labels(actor, queue), QUEUE_WAIT.labels(queue)


@functools.lru_cache(maxsize=4096)
def _counted(actor: str, queue: str, outcome: str) -> Any:
    """The outcome counter's child for one actor, queue and outcome (cached as ``_series``)."""
    return JOBS.labels(actor, queue, outcome)


def _queue(message: Any) -> str:
    return str(message.queue_name).removesuffix(".DQ")


@counts_failures
class Metrics(Middleware):
    """Prometheus metrics of the jobs this process runs.

    Parameters:
      settings: ``metrics_port`` 0 runs no endpoint (the files are still written).
      serve: the fork function that serves the instance's metrics (a module-level function:
        Dramatiq starts a fork from its import path); None runs no endpoint.
    """

    def __init__(self, settings: JobSettings, serve: Callable[[], int] | None = None) -> None:
        self.settings = settings
        self.serve = serve

    @property
    def forks(self) -> list[Callable[[], int]]:
        return [self.serve] if self.serve is not None and self.settings.metrics_port else []

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        now = time.time()
        queue = _queue(message)
        setattr(message, _STARTED, time.perf_counter())
        in_progress, _, queue_wait = _series(message.actor_name, queue)
        in_progress.inc()
        due_ms = max(message.message_timestamp or 0, message.options.get("eta") or 0)
        if due_ms:
            queue_wait.observe(max(0.0, now - due_ms / 1000))

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        queue = _queue(message)
        if exception is None:
            outcome = "succeeded"
        elif message.failed:
            outcome = "failed"
        else:
            outcome = "retried"
            RETRIES.labels(message.actor_name, queue).inc()
        self._finish(message, queue, outcome)

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        queue = _queue(message)
        if getattr(message, CANCELLED_ATTRIBUTE, False):
            outcome = "cancelled"
        else:
            outcome = "dead" if message.failed else "skipped"
        self._finish(message, queue, outcome)

    def before_nack(self, broker: Broker, message: MessageProxy) -> None:
        reason = reason_for(broker, message, getattr(message, "_exception", None))
        DEAD_LETTERS.labels(_queue(message), reason).inc()

    def after_worker_shutdown(self, broker: Broker, worker: Any) -> None:
        batched.flush()  # the last jobs' counts, before the instance's endpoint goes away

    @staticmethod
    def _finish(message: MessageProxy, queue: str, outcome: str) -> None:
        started = getattr(message, _STARTED, None)
        if started is not None:
            setattr(message, _STARTED, None)
            in_progress, duration, _ = _series(message.actor_name, queue)
            in_progress.dec()
            duration.observe(time.perf_counter() - started)
        # counted last: a batch written between these lines may show a duration without its
        # count, never a counted job still in progress
        _counted(message.actor_name, queue, outcome).inc()
