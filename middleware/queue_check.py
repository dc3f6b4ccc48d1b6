"""QueueCheck: a worker process declares every queue at boot, so a queue that exists in
RabbitMQ with other arguments (another queue type, another priority) stops the worker at
start with what differs and how to migrate, instead of a consumer retrying it forever."""

from __future__ import annotations

import logging
import sys
from typing import Any

from dramatiq import Broker, Middleware
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.cli import RET_IMPORT

from jobcore.queue_types import QueueArgumentsMismatch

logger = logging.getLogger(__name__)


class QueueCheck(Middleware):
    """Declares the broker's queues in ``before_worker_boot``; a mismatch exits the process
    with Dramatiq's start-failure code, which the supervisor treats as fatal, not a crash."""

    def before_worker_boot(self, broker: Broker, worker: Any) -> None:
        if not isinstance(broker, RabbitmqBroker):
            return
        try:
            for queue in sorted(broker.get_declared_queues()):
                broker.declare_queue(queue, ensure=True)
        except QueueArgumentsMismatch as exc:
            logger.critical("%s", exc)
            sys.exit(RET_IMPORT)
        finally:
            # the declares opened the main thread's connection, which nothing services after
            # boot: RabbitMQ drops it for missed heartbeats, and closing it at shutdown then
            # wrote 3 ERROR lines per process (connection reset by peer). Close it now.
            del broker.connection
