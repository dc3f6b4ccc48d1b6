"""The broker and the whole middleware stack, assembled in one place.

``dramatiq actors`` imports the actor modules, which import this module first, so every actor
binds to the broker built here. This is the one module with an import-time side effect: it
reads the settings and sets Dramatiq's global broker, as Dramatiq's guide prescribes.
"""

from __future__ import annotations

import atexit
import logging

import dramatiq
from dramatiq import Broker, Middleware
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)
from sqlalchemy import select

import shop.metrics  # noqa: F401  (first: a worker process's metrics go to its instance's files)
from middleware.compensation import Compensation
from middleware.crash_guard import CrashGuard
from middleware.dead_letters import DeadLetters
from middleware.db_sessions import DbSessions
from middleware.job_status import JobStatus
from middleware.log_context import LogContext
from middleware.metrics import Metrics
from shop import db
from shop.deferred_acks import LedgerAckedRabbitmqBroker
from shop.ledger import Change, LedgerWriter, claim_delivery, connect_psycopg
from shop.metrics.definitions import DEAD_LETTERS
from shop.metrics.publishing import PublishMetrics
from shop.models import FINAL_STATES, LedgerEntry
from shop.settings import Settings

DEFAULT_TIME_LIMIT_MS = 10 * 60 * 1000


def _already_finished(message_id: str) -> bool:
    with db.get_engine().connect() as conn:
        state = conn.scalar(select(LedgerEntry.state).where(LedgerEntry.message_id == message_id))
    return state in FINAL_STATES


def _claim(change: Change, attempt: int, redelivered: bool) -> bool:
    conn = db.get_engine().raw_connection()
    try:
        return claim_delivery(conn, change, attempt, redelivered)
    finally:
        conn.close()


_COUNT_REDELIVERY = """
WITH marker AS (DELETE FROM requeued_messages WHERE message_id = %(id)s RETURNING 1)
INSERT INTO job_ledger AS j (message_id, actor, queue, state, state_changed_at, attempts, redeliveries)
VALUES (%(id)s, %(actor)s, %(queue)s, 'running', now(), 0, 0)
ON CONFLICT (message_id) DO UPDATE SET
  redeliveries = j.redeliveries
      + CASE WHEN j.state = 'running' AND NOT EXISTS (SELECT 1 FROM marker) THEN 1 ELSE 0 END,
  state = CASE WHEN j.state IN ('enqueued', 'retrying', 'running') THEN 'running' ELSE j.state END,
  state_changed_at = CASE WHEN j.state IN ('enqueued', 'retrying') THEN now() ELSE j.state_changed_at END
RETURNING redeliveries
"""


def _count_redelivery(message_id: str, actor: str, queue: str) -> int:
    """Counts a redelivery as a crash when the ledger shows the last delivery started and never
    finished; records this delivery's start at once, so the next crash is seen for sure."""
    conn = db.get_engine().raw_connection()
    try:
        with conn.cursor() as cur:
            cur.execute(_COUNT_REDELIVERY, {"id": message_id, "actor": actor, "queue": queue.removesuffix(".DQ")})
            count = int(cur.fetchone()[0])
        conn.commit()
        return count
    finally:
        conn.close()


def _mark_requeued(message_ids: list[str]) -> None:
    conn = db.get_engine().raw_connection()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO requeued_messages (message_id) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING",
                (message_ids,),
            )
        conn.commit()
    finally:
        conn.close()


def _store_undecodable(queue: str, body: bytes) -> None:
    from shop import dead_letters

    logging.getLogger("shopjobs.dead_letters").warning(
        "undecodable message in %s (%d bytes): %s", queue, len(body), dead_letters.preview(body))
    dead_letters.record(queue=queue, body=body, reason="undecodable", error="not a Dramatiq message")
    DEAD_LETTERS.labels(queue.removesuffix(".DQ"), "undecodable").inc()


def build_middleware(
    settings: Settings, ledger: LedgerWriter | None, *, acks_deferred: bool = False
) -> list[Middleware]:
    """The stack, in order. ``before_*`` hooks run top to bottom, ``after_*`` bottom to top.

    - LogContext first: its context is bound before anything logs and cleared last.
    - DbSessions next: the process's engine exists before any hook touches the database.
    - Metrics next: its duration covers the other middleware, and its ``after_*`` hooks see
      Retries' decision (retried or failed for good).
    - Compensation above Retries: it compensates only once Retries has marked a step failed.
    - DeadLetters stores what is rejected; CrashGuard parks crash loops before JobStatus
      claims or records a run.
    - JobStatus above Retries: its ``after_process_message`` runs after Retries has decided
      between retrying and failing, so the ledger records that decision.
    """
    stack: list[Middleware] = [
        LogContext(settings),
        DbSessions(settings),
        Metrics(settings),
        AgeLimit(),
        TimeLimit(time_limit=DEFAULT_TIME_LIMIT_MS),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
    ]
    stack.append(Compensation())
    if ledger is not None:
        stack += [DeadLetters(), CrashGuard(_count_redelivery)]
        stack.append(
            JobStatus(
                ledger,
                args_max_bytes=settings.ledger_args_max_bytes,
                already_finished=_already_finished,
                acks_deferred=acks_deferred,
                prefetch_per_thread=settings.prefetch_per_thread,
                claim=_claim,
            )
        )
    stack += [
        Retries(
            max_retries=settings.default_max_retries,
            min_backoff=settings.min_backoff_ms,
            max_backoff=settings.max_backoff_ms,
        ),
        CurrentMessage(),
    ]
    return stack


class ShopRabbitmqBroker(PublishMetrics, LedgerAckedRabbitmqBroker):
    """The RabbitMQ broker with ledger-deferred acks, measuring every publish."""


def build_broker(settings: Settings) -> Broker:
    """RabbitMQ with publisher confirms, heartbeats and ledger-deferred acks, or a StubBroker."""
    db.configure(settings)
    ledger = None
    if settings.ledger_enabled:
        ledger = LedgerWriter(
            connect_psycopg(settings.psycopg_dsn),
            flush_ms=settings.ledger_flush_ms,
            gather_ms=settings.ledger_gather_ms,
            max_batch=settings.ledger_max_batch,
        )
    if settings.broker == "stub":
        return StubBroker(middleware=build_middleware(settings, ledger))
    return ShopRabbitmqBroker(
        ledger=ledger,
        on_undecodable=_store_undecodable if ledger is not None else None,
        on_requeue=_mark_requeued if ledger is not None else None,
        url=settings.amqp_url_with_heartbeat,
        confirm_delivery=True,
        middleware=build_middleware(settings, ledger, acks_deferred=True),
    )


def ledger_writer(broker: Broker) -> LedgerWriter | None:
    """The ledger writer of a broker's stack (producers flush it before they exit)."""
    for middleware in broker.middleware:
        if isinstance(middleware, JobStatus):
            return middleware.writer
    return None


def flush_ledger(timeout: float = 30.0) -> bool:
    """Write this process's buffered ledger rows now (producers call it, and it runs at exit)."""
    writer = ledger_writer(dramatiq.get_broker())
    return writer.flush(timeout) if writer is not None else True


settings = Settings.from_env()
broker = build_broker(settings)
dramatiq.set_broker(broker)
atexit.register(flush_ledger)
