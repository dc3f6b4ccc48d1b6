"""Third-party request lines show only at DEBUG; dead-letter lines carry their ids as fields."""

from __future__ import annotations

import io
import json
import logging

import pytest

from jobcore import job_context, logs


@pytest.fixture()
def captured():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {n: logging.getLogger(n).level for n in ("httpx", "httpcore", "urllib3")}

    def configure(level_name: str) -> io.StringIO:
        logs.configure("json", level_name)
        out = io.StringIO()
        root.handlers[0].setStream(out)
        return out

    yield configure
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)


def test_httpx_request_lines_are_hidden_at_info_and_shown_at_debug(captured):
    out = captured("INFO")
    logging.getLogger("httpx").info('HTTP Request: GET http://x/ "HTTP/1.1 200 OK"')
    logging.getLogger("httpx").warning("a real problem")
    assert "HTTP Request" not in out.getvalue() and "a real problem" in out.getvalue()
    out = captured("DEBUG")
    logging.getLogger("httpx").info('HTTP Request: GET http://x/ "HTTP/1.1 200 OK"')
    assert "HTTP Request" in out.getvalue()


def test_extra_fields_of_a_log_call_are_json_fields(captured):
    out = captured("INFO")
    logging.getLogger("jobcore.dead_letters").warning(
        "dead letter: queue=%s",
        "orders",
        extra={"queue": "orders", "message_id": "m-1", "actor": "a.b"},
    )
    line = json.loads(out.getvalue().splitlines()[-1])
    assert (line["queue"], line["message_id"], line["actor"]) == ("orders", "m-1", "a.b")


def test_a_notification_job_binds_its_notification_id_to_its_log_lines(captured):
    import dramatiq
    from dramatiq.broker import MessageProxy
    from dramatiq.brokers.stub import StubBroker

    from middleware.log_context import LogContext
    from shop.settings import Settings

    broker = StubBroker()

    @dramatiq.actor(broker=broker, actor_name="notifications.send_sms")
    def send_sms(notification_id: int) -> None: ...

    out = captured("INFO")
    message = MessageProxy(send_sms.message(42))
    middleware = LogContext(Settings.from_env({}))
    middleware.before_process_message(broker, message)
    message.options["retries"] = 1  # Retries counting the next attempt: the line keeps this one
    logging.getLogger("dramatiq.anything").warning("inside the job")
    logs.get_logger("shop.anything").info("structlog inside the job", notification_id=7)
    middleware.after_process_message(broker, message)
    logging.getLogger("dramatiq.anything").warning("after the job")

    inside, own, after = (json.loads(line) for line in out.getvalue().splitlines()[-3:])
    assert (inside["notification_id"], inside["message_id"], inside["attempt"]) == (
        42,
        message.message_id,
        1,
    )
    assert (own["notification_id"], own["actor"]) == (7, "notifications.send_sms")
    assert "message_id" not in after and job_context.current() == {}


def _run(captured, actor_options: dict, raises: int) -> list[dict]:
    import dramatiq
    from dramatiq import Worker
    from dramatiq.brokers.stub import StubBroker
    from dramatiq.middleware import Retries

    from jobcore.errors import TransientError

    broker = StubBroker(middleware=[Retries(max_retries=5, min_backoff=1, max_backoff=5)])
    previous = dramatiq.get_broker()
    dramatiq.set_broker(broker)
    calls = []

    @dramatiq.actor(broker=broker, actor_name="unit.flaky", **actor_options)
    def flaky() -> None:
        calls.append(1)
        if len(calls) <= raises:
            raise TransientError("SMTP 421 try again later")

    out = captured("INFO")
    worker = Worker(broker, worker_timeout=50)
    worker.start()
    try:
        flaky.send()
        broker.join("default", fail_fast=False)
        worker.join()
    finally:
        worker.stop()
        dramatiq.set_broker(previous)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    return [
        line
        for line in lines
        if "unit.flaky" in line["event"]
        and "Failed" in line["event"]
        or "will be retried" in line["event"]
    ]


def test_a_transient_error_that_will_be_retried_is_one_warning_without_a_traceback(captured):
    # Given an actor that fails twice with a transient error, then succeeds
    failures = _run(captured, {"max_retries": 3}, raises=2)
    # Then each failure is a WARNING saying it will be retried, with no traceback
    assert [f["level"] for f in failures] == ["warning", "warning"]
    assert all("will be retried" in f["event"] and "exception" not in f for f in failures)


def test_the_last_attempt_of_a_transient_error_keeps_its_traceback(captured):
    # Given an actor that always fails with a transient error and may retry once
    failures = _run(captured, {"max_retries": 1}, raises=99)
    # Then the retried attempt is one line; the last one (no retry follows) keeps the traceback
    # (its ERROR line is the dead letter's, written by the DeadLetters middleware)
    assert [f["level"] for f in failures] == ["warning", "warning"]
    assert "will be retried" in failures[0]["event"] and "exception" not in failures[0]
    assert "TransientError: SMTP 421" in failures[-1]["exception"]


def test_a_refused_broker_connection_is_one_warning_not_six_errors_and_a_critical(captured):
    # Given what pika and Dramatiq log for one connection attempt while RabbitMQ is away
    out = captured("INFO")
    refused = "ConnectionRefusedError(111, 'Connection refused')"
    workflow = logging.getLogger("pika.adapters.utils.connection_workflow")
    workflow.error("TCP Connection attempt failed: %s", refused)
    workflow.error(
        "AMQPConnector - reporting failure: AMQPConnectorSocketConnectError: %s", refused
    )
    workflow.error("AMQP connection workflow failed: AMQPConnectionWorkflowFailed: 1 exceptions")
    logging.getLogger("pika.adapters.utils.io_services_utils").error("Socket failed to connect")
    blocking = logging.getLogger("pika.adapters.blocking_connection")
    blocking.error("Connection workflow failed: %r", "AMQPConnectionWorkflowFailed")
    try:
        raise ConnectionRefusedError(111, "Connection refused")
    except ConnectionRefusedError:
        blocking.exception("Error in _create_connection().")
    logging.getLogger("dramatiq.worker.ConsumerThread(orders)").critical(
        "Consumer encountered a connection error: %s", "AMQPConnectionError"
    )
    # and a real error of the same libraries, which stays as it is
    logging.getLogger("dramatiq.worker.ConsumerThread(orders)").critical(
        "Consumer encountered an unexpected error."
    )

    # Then two WARNING lines say it (pika's and the consumer's), the repetitions are gone, and
    # the unexpected error is still CRITICAL
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["level"], r["event"].split(":")[0]) for r in lines] == [
        ("warning", "Connection workflow failed"),
        ("warning", "Consumer encountered a connection error"),
        ("critical", "Consumer encountered an unexpected error."),
    ]

    # And at DEBUG the repetitions show, at DEBUG level
    out = captured("DEBUG")
    workflow.error("TCP Connection attempt failed: %s", refused)
    assert json.loads(out.getvalue().splitlines()[-1])["level"] == "debug"


def test_a_connection_that_died_with_the_broker_closes_at_shutdown_with_a_warning(captured):
    out = captured("INFO")
    lost = "StreamLostError: Stream connection lost: ConnectionResetError(104)"
    logging.getLogger("pika.adapters.utils.io_services_utils").error(
        "_AsyncBaseTransport._produce() failed, aborting connection: %s", lost
    )
    logging.getLogger("pika.adapters.base_connection").error("connection_lost: %s", lost)
    logging.getLogger("pika.adapters.blocking_connection").error(
        "Unexpected connection close detected: %s", lost
    )
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["level"] for r in lines] == ["warning"]
    assert lines[0]["event"].startswith("Unexpected connection close detected")
