"""OutboxRelay: every worker process runs an outbox relay thread (``jobcore.relay``).

It publishes the sends its jobs committed (woken by the ledger writer right after the
commit), what the process's services commit with ``jobcore.outbox.enqueue`` (woken by their
commit: a job fanning out thousands of sends waits for no confirm), delays held in
PostgreSQL when they come due, and stragglers of any producer. Every
process runs one: ``FOR UPDATE SKIP LOCKED`` keeps them off each other's rows, and one dead
process leaves the work to the others.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq import Broker, Middleware

from jobcore import outbox
from jobcore.ledger.writer import LedgerWriter
from jobcore.metrics.failures import counts_failures
from jobcore.relay import Publisher, Relay, connect_psycopg
from jobcore.settings import JobSettings


def build_relay(settings: JobSettings, broker: Any) -> Relay:
    """A relay publishing with ``settings``' AMQP URL, redeclaring queues through ``broker``."""

    def declare(queue: str) -> None:
        broker.queues_pending.add(queue)  # it was deleted: declare it again, as Dramatiq would
        broker.declare_queue(queue, ensure=True)

    return Relay(
        connect_psycopg(settings.psycopg_dsn),
        Publisher(settings.amqp_url_with_heartbeat, declare),
        poll_s=settings.relay_poll_ms / 1000,
        max_backoff_s=settings.relay_max_backoff_ms / 1000,
        straggler_after_s=settings.outbox_relay_after_s,
        on_published=lambda message, delay: broker.emit_after("enqueue", message, delay),
    )


@counts_failures
class OutboxRelay(Middleware):
    """Starts a relay thread after a worker process boots and stops it at shutdown.

    Parameters:
      settings: the database and AMQP URLs and the relay's timing.
      writer: the process's ledger writer; its commits of job sends wake the relay.
    """

    def __init__(self, settings: JobSettings, writer: LedgerWriter | None) -> None:
        self.settings = settings
        self.writer = writer
        self.relay: Relay | None = None

    def after_worker_boot(self, broker: Broker, worker: dramatiq.Worker) -> None:
        self.relay = build_relay(self.settings, broker).start()
        outbox.relay_sends_with(self.relay)
        if self.writer is not None:
            self.writer.sends_committed = self.relay.wake

    def before_worker_shutdown(self, broker: Broker, worker: dramatiq.Worker) -> None:
        if self.relay is not None:
            outbox.relay_sends_with(None)
            # the ledger's last commits (and their sends) come first, then the last round
            if self.writer is not None:
                self.writer.flush(timeout=10)
            self.relay.wake()
            self.relay.stop()
