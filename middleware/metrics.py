"""Metrics: counts, times and gauges every delivery, in Prometheus' multiprocess files.

A job's start and end are queued (``jobcore.metrics.job_events``: an append per hook) and
applied in aggregate by the flusher, which writes them to the files once a second; this
middleware writes the last ones at worker shutdown.

Sits high in the stack (below LogContext and DbSessions): its ``before_process_message`` runs
before the other middleware, so the duration includes theirs, and its ``after_*`` hooks run
after Retries has decided, so a failed attempt is counted as retried or failed correctly.
Its fork serves the whole instance's metrics (``jobcore.metrics.exposition``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from dramatiq import Broker, Middleware
from dramatiq.broker import MessageProxy

from jobcore.metrics import batched, job_events
from jobcore.metrics.definitions import DEAD_LETTERS
from jobcore.metrics.failures import counts_failures
from jobcore.settings import JobSettings
from middleware.cancellations import CANCELLED_ATTRIBUTE
from middleware.dead_letters import reason_for

_STARTED = "shopjobs_metrics_started"


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
        raw = message._message  # past MessageProxy's __getattr__: this runs per job
        setattr(message, _STARTED, time.perf_counter())
        due_ms = max(raw.message_timestamp or 0, raw.options.get("eta") or 0)
        wait_s = max(0.0, time.time() - due_ms / 1000) if due_ms else None
        job_events.started(raw.actor_name, _queue(raw), wait_s)

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None:
            outcome = "succeeded"
        elif message.failed:
            outcome = "failed"
        else:
            outcome = "retried"
        self._finish(message, outcome)

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        if getattr(message, CANCELLED_ATTRIBUTE, False):
            outcome = "cancelled"
        else:
            outcome = "dead" if message.failed else "skipped"
        self._finish(message, outcome)

    def before_nack(self, broker: Broker, message: MessageProxy) -> None:
        reason = reason_for(broker, message, getattr(message, "_exception", None))
        DEAD_LETTERS.labels(_queue(message), reason).inc()

    def after_worker_shutdown(self, broker: Broker, worker: Any) -> None:
        batched.flush()  # the last jobs' counts, before the instance's endpoint goes away

    @staticmethod
    def _finish(message: MessageProxy, outcome: str) -> None:
        raw = message._message
        started = getattr(message, _STARTED, None)
        duration_s = None
        if started is not None:
            setattr(message, _STARTED, None)
            duration_s = time.perf_counter() - started
        job_events.ended(raw.actor_name, _queue(raw), outcome, duration_s)
