"""The broker and the whole middleware stack, assembled in one place.

``dramatiq actors`` imports the actor modules, which import this module first, so every actor
binds to the broker built here. This is the one module with an import-time side effect, as
Dramatiq's guide prescribes: it builds the process's one settings object from the environment,
installs it (``shop.settings.current()``) and the routing table (``jobcore.routing``), and sets
Dramatiq's global broker. Other entry points (the CLI, the scheduler) import it for the same.
"""

from __future__ import annotations

import atexit

import dramatiq
from dramatiq import Broker, Middleware
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

import jobcore.metrics  # noqa: F401  (first: a worker process's metrics go to its instance's files)
from jobcore import db, outbox, routing
from jobcore.acks import LedgerAckedRabbitmqBroker
from jobcore.hooks import HookDispatch
from jobcore.ledger import store as ledger_store
from jobcore.ledger.writer import LedgerWriter, connect_psycopg
from jobcore.metrics.publishing import PublishMetrics
from jobcore.queue_types import QueueType, TypedQueuesBroker
from jobcore.sends import DurableSendsBroker
from middleware.cancellations import Cancellations
from middleware.compensation import Compensation
from middleware.crash_guard import CrashGuard
from middleware.db_sessions import DbSessions
from middleware.dead_letters import DeadLetters
from middleware.durable_sends import DurableSends
from middleware.job_status import JobStatus
from middleware.ledger_results import ledger_results
from middleware.log_context import LogContext
from middleware.metrics import Metrics
from middleware.outbox_relay import OutboxRelay
from middleware.pipelines import Pipelines
from middleware.queue_check import QueueCheck
from middleware.queue_match import QueueMatch
from middleware.time_limit_check import TimeLimitCheck
from middleware.worker_registry import WorkerRegistry
from shop import worker_metrics
from shop.integrations import providers
from shop.routes import build_routes
from shop.settings import Settings

DEFAULT_TIME_LIMIT_MS = 10 * 60 * 1000


def build_middleware(
    settings: Settings,
    ledger: LedgerWriter | None,
    *,
    acks_deferred: bool = False,
    durable_sends: bool = False,
    relay: bool | None = None,
) -> list[Middleware]:
    """The stack, in order. ``before_*`` hooks run top to bottom, ``after_*`` bottom to top.

    - LogContext first: its context is bound before anything logs and cleared last.
    - DbSessions next: the process's engine exists before any hook touches the database.
    - DurableSends next (with the ledger): its ``after_*`` hooks run after every middleware
      that sends (Retries, Compensation, Pipelines, Callbacks), so a job's sends are all
      buffered when it records them with the job's final state. OutboxRelay publishes them,
      and due delays and stragglers (``relay``, by default when sends are durable).
    - QueueCheck: a worker declares every queue at boot; a queue RabbitMQ holds with other
      arguments stops it at start with what differs. TimeLimitCheck: an actor whose time limit
      does not end 5 s before RabbitMQ's consumer_timeout stops it at start, named.
    - Metrics next: its duration covers the other middleware, and its ``after_*`` hooks see
      Retries' decision (retried or failed for good).
    - QueueMatch beside AgeLimit: both fail and skip a message before anything claims or runs it.
    - Compensation above Retries: it compensates only once Retries has marked a step failed.
    - DeadLetters stores what is rejected; Cancellations skips cancelled jobs and CrashGuard
      parks crash loops before JobStatus claims or records a run.
    - JobStatus above Retries: its ``after_process_message`` runs after Retries has decided
      between retrying and failing, so the ledger records that decision.
    - Results after JobStatus: it tells Dramatiq that return values are kept (JobStatus writes
      them to the ledger with the final state; ``LedgerResults`` reads them back), with no
      per-job hooks (``middleware.ledger_results``).
    """
    stack: list[Middleware] = [LogContext(settings), DbSessions(settings)]
    if ledger is not None and durable_sends:
        stack.append(DurableSends(ledger))
    if ledger is not None and (durable_sends if relay is None else relay):
        stack.append(OutboxRelay(settings, ledger))
    stack += [QueueCheck(), TimeLimitCheck(settings.consumer_timeout_s)]
    stack += [
        Metrics(settings, serve=worker_metrics.serve),
        AgeLimit(),
        QueueMatch(),
        TimeLimit(time_limit=DEFAULT_TIME_LIMIT_MS),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
    ]
    stack.append(Compensation())
    if ledger is not None:
        stack += [
            WorkerRegistry(),
            DeadLetters(),
            Cancellations(connect_psycopg(settings.psycopg_dsn)),
            CrashGuard(
                ledger_store.classify_redelivery,
                ledger_store.start_lone_run,
                ledger_store.end_lone_run,
            ),
        ]
        stack.append(
            JobStatus(
                ledger,
                args_max_bytes=settings.ledger_args_max_bytes,
                already_finished=ledger_store.already_finished,
                acks_deferred=acks_deferred,
                prefetch_per_thread=settings.prefetch_per_thread,
                claim=ledger_store.claim,
            )
        )
        stack.append(ledger_results())
    stack += [
        Retries(
            max_retries=settings.default_max_retries,
            min_backoff=settings.min_backoff_ms,
            max_backoff=settings.max_backoff_ms,
        ),
        CurrentMessage(),
    ]
    return stack


class ShopRabbitmqBroker(
    HookDispatch, DurableSendsBroker, PublishMetrics, TypedQueuesBroker, LedgerAckedRabbitmqBroker
):
    """The RabbitMQ broker with ledger-deferred acks, measuring every publish; a running job's
    sends and long delays go to PostgreSQL first (``jobcore.sends``); queues of the configured
    type (``jobcore.queue_types``); each hook is emitted only to the middleware that define it
    (``jobcore.hooks``)."""


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
    outbox.delay_in_db_after_ms = settings.delay_in_db_after_s * 1000
    if settings.broker == "stub":
        return StubBroker(middleware=build_middleware(settings, ledger))
    rabbitmq = ShopRabbitmqBroker(
        ledger=ledger,
        on_undecodable=ledger_store.store_undecodable if ledger is not None else None,
        on_requeue=ledger_store.mark_handed_back if ledger is not None else None,
        url=settings.amqp_url_with_heartbeat,
        confirm_delivery=True,
        middleware=build_middleware(
            settings,
            ledger,
            acks_deferred=True,
            durable_sends=settings.durable_sends,
            relay=True,  # held delays and stragglers are relayed whichever way jobs send
        ),
    )
    rabbitmq.delay_in_db_after_ms = settings.delay_in_db_after_s * 1000
    rabbitmq.queue_type = QueueType(
        settings.queue_type, settings.queue_max_priority, settings.queue_delivery_limit
    )
    rabbitmq.args_max_bytes = settings.ledger_args_max_bytes
    return rabbitmq


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
providers.configure(settings)
routes = build_routes(settings)
routing.install(routes)
broker = build_broker(settings)
dramatiq.set_broker(broker)
atexit.register(flush_ledger)
