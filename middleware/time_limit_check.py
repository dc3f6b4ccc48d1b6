"""TimeLimitCheck: a worker whose actors may outlive RabbitMQ's consumer_timeout does not start.

A job still running at ``consumer_timeout`` has its channel closed and is redelivered while it
runs, so it runs twice at once (``jobcore.time_limits``). The check runs at worker boot, once
every actor is declared, over the queues the worker consumes, and stops the process with
Dramatiq's start-failure code, which the supervisor treats as fatal, not as a crash.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from dramatiq import Broker, Middleware
from dramatiq.cli import RET_IMPORT

from jobcore.settings import CONSUMER_TIMEOUT_MARGIN_S
from jobcore.time_limits import Limit, TimeLimitTooLong, check, prefetch_warning

logger = logging.getLogger(__name__)


class TimeLimitCheck(Middleware):
    """Keeps every run inside consumer_timeout: refuses a worker whose actors' limits do not fit,
    and caps a ``time_limit`` a sender put on one message (above TimeLimit in the stack, so
    TimeLimit reads the capped value).

    Parameters:
      consumer_timeout_s: RabbitMQ's consumer_timeout (``SHOPJOBS_CONSUMER_TIMEOUT_S``).
    """

    def __init__(self, consumer_timeout_s: int) -> None:
        self.consumer_timeout_s = consumer_timeout_s
        self.ceiling_ms = (consumer_timeout_s - CONSUMER_TIMEOUT_MARGIN_S) * 1000
        self.longest: Limit | None = None

    def before_worker_boot(self, broker: Broker, worker: Any) -> None:
        queues = getattr(worker, "consumer_whitelist", None) or None
        try:
            longest = check(broker, self.consumer_timeout_s, queues)
        except TimeLimitTooLong as exc:
            logger.critical("refusing to start: %s", exc)
            sys.exit(RET_IMPORT)
        self.longest = longest
        logger.info(
            "time limits end before consumer_timeout %d s: the longest is %s's, %.0f s",
            self.consumer_timeout_s,
            longest.actor,
            (longest.limit_ms or 0) / 1000,
        )

    def after_worker_boot(self, broker: Broker, worker: Any) -> None:
        """Say when prefetched deliveries could wait past the timeout (the prefetch is chosen in
        before_worker_boot, by JobStatus). An INFO line, not a warning: the bound assumes every
        job ahead runs to its limit, so a group on every queue always passes it, and a warning
        logged at every boot is soon ignored; README, "Time limits end before consumer_timeout",
        says how to run long jobs apart."""
        consumers = [q for q in getattr(worker, "consumers", {}) if not q.endswith(".DQ")]
        if self.longest is None or not consumers:
            return
        warning = prefetch_warning(
            self.longest,
            worker.queue_prefetch * len(consumers),
            worker.worker_threads,
            self.consumer_timeout_s,
        )
        if warning:
            logger.info(warning)

    def before_process_message(self, broker: Broker, message: Any) -> None:
        limit = message.options.get("time_limit")
        if isinstance(limit, int | float) and limit > self.ceiling_ms:
            logger.warning(
                "message %s asks for a time limit of %.0f s, past consumer_timeout %d s: "
                "capped at %.0f s",
                message.message_id,
                limit / 1000,
                self.consumer_timeout_s,
                self.ceiling_ms / 1000,
            )
            message.options["time_limit"] = self.ceiling_ms
