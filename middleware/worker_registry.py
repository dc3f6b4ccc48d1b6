"""WorkerRegistry: each worker process announces itself, so ``shopjobs workers`` can list it."""

from __future__ import annotations

import logging

from dramatiq import Broker, Middleware, Worker

from jobcore.metrics.failures import counts_failures
from jobcore.worker_registry import Heartbeat, held_by, held_ids_by

logger = logging.getLogger("shopjobs.workers")


@counts_failures
class WorkerRegistry(Middleware):
    """Registers the process when its Worker boots; removes it once the Worker has shut down.

    A stopping Worker first lets its running jobs finish (up to the shutdown timeout): the row
    keeps beating until then, so ``shopjobs workers`` lists a draining process with its jobs.
    """

    def __init__(self) -> None:
        self.heartbeat: Heartbeat | None = None

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        queues = sorted(worker.consumer_whitelist or broker.get_declared_queues())
        queues = [q for q in queues if not q.endswith((".DQ", ".XQ"))]
        heartbeat = Heartbeat(
            queues,
            worker.worker_threads,
            held=lambda: held_by(worker),
            held_ids=lambda: held_ids_by(worker),
        )
        try:
            heartbeat.start()
        except Exception:
            logger.warning("this worker process could not register itself", exc_info=True)
            return
        self.heartbeat = heartbeat

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        heartbeat, self.heartbeat = self.heartbeat, None
        if heartbeat is not None:
            try:
                heartbeat.stop()
            except Exception:
                logger.warning("this worker process could not unregister itself", exc_info=True)
