"""WorkerRegistry: each worker process announces itself, so ``shopjobs workers`` can list it."""

from __future__ import annotations

import logging

from dramatiq import Broker, Middleware, Worker

from jobcore.metrics.failures import counts_failures
from jobcore.worker_registry import Heartbeat

logger = logging.getLogger("shopjobs.workers")


@counts_failures
class WorkerRegistry(Middleware):
    """Registers the process when its Worker boots; removes it at a clean shutdown."""

    def __init__(self) -> None:
        self.heartbeat: Heartbeat | None = None

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        queues = sorted(worker.consumer_whitelist or broker.get_declared_queues())
        self.heartbeat = Heartbeat([q for q in queues if not q.endswith((".DQ", ".XQ"))], worker.worker_threads)
        try:
            self.heartbeat.start()
        except Exception:
            logger.warning("this worker process could not register itself", exc_info=True)

    def before_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        if self.heartbeat is not None:
            try:
                self.heartbeat.stop()
            except Exception:
                logger.warning("this worker process could not unregister itself", exc_info=True)
