"""DbSessions: the worker process's engine is made after fork and disposed at shutdown."""

from __future__ import annotations

from dramatiq import Broker, Middleware, Worker

from jobcore import db
from jobcore.metrics.failures import counts_failures
from jobcore.settings import JobSettings


@counts_failures
class DbSessions(Middleware):
    """One engine per worker process; actors open one session per message with ``session_scope``.

    The engine is disposed once the Worker has shut down: ``after_worker_shutdown`` runs
    bottom to top, so every middleware below this one has used the database for the last time.
    (A process that starts another Worker gets a new engine on first use.)

    Parameters:
      settings: the database URL and pool size come from here.
    """

    def __init__(self, settings: JobSettings) -> None:
        self.settings = settings

    def after_process_boot(self, broker: Broker) -> None:
        db.configure(self.settings)
        db.get_engine()

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        db.dispose_engine()
