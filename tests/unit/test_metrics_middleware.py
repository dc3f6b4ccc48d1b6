"""The Metrics middleware and the failure counter of our middleware, on a StubBroker."""

from __future__ import annotations

import io
import logging

import dramatiq
import pytest
from dramatiq import Middleware
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Retries
from prometheus_client import REGISTRY

from jobcore import logs
from jobcore.metrics import batched
from jobcore.metrics.failures import counts_failures
from jobcore.redaction import register_secrets, scrub_text
from middleware.metrics import Metrics
from shop.settings import Settings


def _value(name: str, **labels: str) -> float:
    batched.flush()  # what the next flush (once a second) would write: the queued job updates
    return REGISTRY.get_sample_value(name, labels) or 0.0


@counts_failures
class BrokenStore(Middleware):
    """A middleware whose store is down: its after hook raises on every job."""

    def after_process_message(self, broker, message, *, result=None, exception=None):
        raise ConnectionError("store unavailable")


@pytest.fixture()
def stub():
    broker = StubBroker(
        middleware=[
            Metrics(Settings.from_env({})),
            BrokenStore(),
            Retries(max_retries=1, min_backoff=10, max_backoff=10),
        ]
    )
    broker.emit_after("process_boot")
    worker = dramatiq.Worker(broker, worker_timeout=50)
    worker.start()
    yield broker
    worker.stop()
    broker.close()


def test_outcomes_durations_and_retries_are_counted_and_a_broken_store_only_counts_its_failure(
    stub,
):
    calls = []

    @dramatiq.actor(
        broker=stub, actor_name="unit.flaky", queue_name="unit", max_retries=1, min_backoff=10
    )
    def flaky(order_id: int) -> None:
        calls.append(order_id)
        if len(calls) == 1:
            raise RuntimeError("first attempt fails")

    @dramatiq.actor(broker=stub, actor_name="unit.doomed", queue_name="unit", max_retries=0)
    def doomed(order_id: int) -> None:
        raise RuntimeError("always")

    before = {
        o: _value("shopjobs_jobs_total", actor="unit.flaky", queue="unit", outcome=o)
        for o in ("succeeded", "retried")
    }
    errors_before = _value(
        "shopjobs_middleware_errors_total", middleware="BrokenStore", hook="after_process_message"
    )
    failed_before = _value(
        "shopjobs_jobs_total", actor="unit.doomed", queue="unit", outcome="failed"
    )
    # When a job fails once then succeeds, and another fails for good, beside a broken store
    flaky.send(1)
    doomed.send(2)
    for queue in ("unit", "unit.DQ", "unit"):
        stub.join(queue, fail_fast=False)

    # Then the jobs ran as if the store were fine, and each outcome and failure is counted
    assert calls == [1, 1]
    assert (
        _value("shopjobs_jobs_total", actor="unit.flaky", queue="unit", outcome="retried")
        == before["retried"] + 1
    )
    assert (
        _value("shopjobs_jobs_total", actor="unit.flaky", queue="unit", outcome="succeeded")
        == before["succeeded"] + 1
    )
    assert (
        _value("shopjobs_jobs_total", actor="unit.doomed", queue="unit", outcome="failed")
        == failed_before + 1
    )
    assert (
        _value(
            "shopjobs_middleware_errors_total",
            middleware="BrokenStore",
            hook="after_process_message",
        )
        == errors_before + 3
    )
    assert _value("shopjobs_jobs_in_progress", actor="unit.flaky", queue="unit") == 0
    assert _value("shopjobs_job_duration_seconds_count", actor="unit.flaky", queue="unit") >= 2
    assert _value("shopjobs_dead_letters_total", queue="unit", reason="failed") >= 1


def test_secrets_and_personal_data_are_masked_in_free_text():
    register_secrets(["Pw-Canary-99"])
    text = (
        "user jane.doe@example.com paid with 4111-1111-1111-1111 (+49 170 1234567), "
        "password=hunter2 token: abc123def, Authorization: Bearer eyJhbGciOi.xyz.abc "
        "key sk_live_0123456789abcdef, amqp://shop:Pw-Canary-99@rabbitmq/ and Pw-Canary-99"
    )
    masked = scrub_text(text)
    for leaked in (
        "jane.doe@example.com",
        "4111",
        "1234567",
        "hunter2",
        "abc123def",
        "eyJhbGciOi",
        "sk_live_0123456789abcdef",
        "Pw-Canary-99",
    ):
        assert leaked not in masked, (leaked, masked)
    assert "[email]" in masked and "[number]" in masked


@pytest.fixture()
def _restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_logged_message_shows_its_actor_and_id_not_its_arguments(_restore_logging):
    logs.configure("json", "INFO")
    out = io.StringIO()
    logging.getLogger().handlers[0].setStream(out)
    message = dramatiq.Message(
        queue_name="unit",
        actor_name="unit.signup",
        args=("someone@example.com",),
        kwargs={},
        options={},
    )
    logging.getLogger("unit").error("Failed to process message %s", message)
    err = out.getvalue()
    assert f"unit.signup[{message.message_id!r}]" in err and "someone@example.com" not in err


def test_a_job_skipped_as_cancelled_is_counted_as_cancelled_not_skipped():
    from dramatiq import Message
    from dramatiq.broker import MessageProxy

    from middleware.cancellations import CANCELLED_ATTRIBUTE

    metrics = Metrics(Settings.from_env({}))
    labels = {"actor": "unit.cancelled", "queue": "unit"}
    before = {
        o: _value("shopjobs_jobs_total", outcome=o, **labels) for o in ("cancelled", "skipped")
    }
    message = MessageProxy(
        Message(queue_name="unit", actor_name="unit.cancelled", args=(), kwargs={}, options={})
    )
    setattr(message, CANCELLED_ATTRIBUTE, True)
    metrics.after_skip_message(None, message)
    after = {
        o: _value("shopjobs_jobs_total", outcome=o, **labels) for o in ("cancelled", "skipped")
    }
    assert after == {"cancelled": before["cancelled"] + 1, "skipped": before["skipped"]}
