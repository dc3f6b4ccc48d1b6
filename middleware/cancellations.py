"""Cancellations: a job cancelled before it started is skipped when it arrives, and recorded so."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from dramatiq import Broker, Middleware, Worker
from dramatiq.broker import MessageProxy
from dramatiq.middleware import SkipMessage

from jobcore.cancellations import CancellationWatch
from jobcore.metrics.failures import counts_failures

CANCELLED_ATTRIBUTE = "cancelled_by_operator"
logger = logging.getLogger("shopjobs.cancellations")


class JobCancelled(SkipMessage):
    """An operator cancelled this job before it started."""


@counts_failures
class Cancellations(Middleware):
    """Skips the jobs an operator cancelled, by a set lookup in a LISTEN-fed set of ids.

    The watch (a thread and its LISTEN connection) lives as long as the Worker: it starts
    before the Worker consumes anything and stops once the Worker has shut down, as
    Dramatiq's own AsyncIO middleware does with its event loop thread.

    Parameters:
      connect: opens a dedicated psycopg2 connection for this process's LISTEN.
    """

    def __init__(self, connect: Callable[[], Any]) -> None:
        self.connect = connect
        self.watch: CancellationWatch | None = None

    def before_worker_boot(self, broker: Broker, worker: Worker) -> None:
        self.watch = CancellationWatch(self.connect)
        self.watch.start()

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        watch, self.watch = self.watch, None
        if watch is not None:
            watch.stop()

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        if self.watch is not None and message.message_id in self.watch:
            setattr(message, CANCELLED_ATTRIBUTE, True)
            logger.info(
                "job %r (%s) was cancelled; skipped", message.message_id, message.actor_name
            )
            raise JobCancelled("cancelled by an operator")
