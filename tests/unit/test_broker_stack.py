"""The middleware stack's order is deliberate: these tests keep it so."""

from __future__ import annotations

import dramatiq
import pytest
from dramatiq.middleware import CurrentMessage, Retries

from broker import build_broker, build_middleware
from jobcore import db
from jobcore.acks import LedgerAckedRabbitmqBroker
from jobcore.ledger.writer import LedgerWriter
from middleware.db_sessions import DbSessions
from middleware.job_status import JobStatus
from middleware.log_context import LogContext
from middleware.metrics import Metrics
from shop.settings import Settings


@pytest.fixture(autouse=True)
def _restore_process_settings():
    """build_broker points the process's engine at its settings: give the run's back after."""
    yield
    db.configure(Settings.from_env())


def _names(stack):
    return [type(m).__name__ for m in stack]


def test_the_stack_is_in_its_documented_order():
    writer = LedgerWriter(lambda: None)
    names = _names(build_middleware(Settings.from_env({}), writer))
    assert names == [
        "LogContext",
        "DbSessions",
        "QueueCheck",
        "TimeLimitCheck",
        "Metrics",
        "AgeLimit",
        "QueueMatch",
        "TimeLimit",
        "ShutdownNotifications",
        "Callbacks",
        "Pipelines",
        "Compensation",
        "WorkerRegistry",
        "DeadLetters",
        "Cancellations",
        "CrashGuard",
        "JobStatus",
        "Results",
        "Retries",
        "CurrentMessage",
    ]


def test_job_status_sees_the_retry_decision_because_after_hooks_run_in_reverse():
    stack = build_middleware(Settings.from_env({}), LedgerWriter(lambda: None))
    order = [type(m) for m in reversed(stack)]  # the order after_* hooks run in
    assert order.index(Retries) < order.index(JobStatus)
    assert order[-1] is LogContext and type(stack[1]) is DbSessions and order[0] is CurrentMessage
    assert order.index(Retries) < order.index(Metrics)  # Metrics counts retried vs failed


def test_without_a_ledger_the_stack_has_no_job_status():
    assert "JobStatus" not in _names(build_middleware(Settings.from_env({}), None))


def test_rabbitmq_broker_has_confirms_and_ledger_deferred_acks():
    settings = Settings.from_env(
        {"SHOPJOBS_AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/some_vhost"}
    )
    broker = build_broker(settings)
    try:
        assert isinstance(broker, LedgerAckedRabbitmqBroker)
        assert broker.confirm_delivery is True
        assert broker.parameters.virtual_host == "some_vhost"
        assert broker.parameters.heartbeat == 30
        job_status = next(m for m in broker.middleware if isinstance(m, JobStatus))
        assert job_status.acks_deferred and broker.ledger is job_status.writer
    finally:
        broker.close()


def test_the_stub_variant_runs_actors_through_the_same_stack():
    broker = build_broker(
        Settings.from_env({"SHOPJOBS_BROKER": "stub", "SHOPJOBS_LEDGER_ENABLED": "0"})
    )
    seen = []

    @dramatiq.actor(broker=broker, actor_name="unit.record", queue_name="unit")
    def record(order_id: int) -> None:
        seen.append(CurrentMessage.get_current_message().message_id)

    message = record.send(3)
    worker = dramatiq.Worker(broker, worker_timeout=50)
    worker.start()
    try:
        broker.join("unit", fail_fast=True)
        worker.join()
    finally:
        worker.stop()
    assert seen == [message.message_id]
