"""How loud a failure is: expected (``throws=``) at INFO, a retried attempt at WARNING, failed
for good at ERROR, so an operator can alert on ERROR lines without alerting on declined cards.

The project's whole middleware stack runs on a StubBroker worker in this process, over this run's
database (the ledger and the dead letters are real), booted as ``dramatiq`` boots a process so its
logging is configured the way a worker's is.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import dramatiq
import pytest

from broker import build_broker, ledger_writer
from jobcore import db
from jobcore.errors import InvalidInput, PermanentError
from shop.settings import Settings
from tests.support.ledger import state
from tests.support.waiting import wait_until


class Records(logging.Handler):
    """Every record that reaches the root logger, at the level it was finally given."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def at_least(self, level: int) -> list[str]:
        return [
            f"{r.levelname} {r.name}: {r.getMessage()}" for r in self.records if r.levelno >= level
        ]

    def dead_letter(self, message_id: str) -> logging.LogRecord | None:
        return next(
            (
                r
                for r in self.records
                if r.name == "jobcore.dead_letters" and repr(message_id) in r.getMessage()
            ),
            None,
        )


@pytest.fixture()
def stub_stack(clean: None) -> Iterator[tuple[dramatiq.Broker, Records]]:
    """The project's stack on a StubBroker with the ledger on, a started worker, and its log."""
    settings = Settings.from_env({**os.environ, "SHOPJOBS_BROKER": "stub"})
    broker = build_broker(settings)
    root = logging.getLogger()
    worker_log = logging.getLogger("dramatiq.worker.WorkerThread")
    saved = root.handlers[:], root.level, worker_log.filters[:]
    records = Records()
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=50)
    try:
        broker.emit_after("process_boot")  # LogContext configures logging as in a worker process
        root.addHandler(records)
        worker.start()
        yield broker, records
    finally:
        worker.stop()
        root.handlers[:], root.level, worker_log.filters[:] = saved
        writer = ledger_writer(broker)
        if writer is not None:
            writer.close(5)
        broker.close()
        db.configure(Settings.from_env())


def test_an_expected_throws_error_logs_no_warning(stub_stack):
    broker, log = stub_stack

    # Given an actor whose bad input is a permanent error it declares in throws=
    @dramatiq.actor(
        broker=broker,
        actor_name="tests.rejects_input",
        queue_name="tests",
        max_retries=3,
        throws=(PermanentError,),
    )
    def rejects_input(order_id: int) -> None:
        raise InvalidInput(f"order {order_id} has no lines")

    # When it fails with that error
    message_id = rejects_input.send(7).message_id
    wait_until(lambda: log.dead_letter(message_id), what="the job dead-lettered")

    # Then the dead letter is an INFO line, and nothing is logged at WARNING or above
    assert log.dead_letter(message_id).levelno == logging.INFO
    assert log.at_least(logging.WARNING) == []


def test_an_unexpected_error_that_is_retried_logs_a_warning_not_an_error(stub_stack):
    broker, log = stub_stack
    calls: list[int] = []

    # Given an actor that fails unexpectedly once, then succeeds
    @dramatiq.actor(
        broker=broker,
        actor_name="tests.flaky_once",
        queue_name="tests",
        max_retries=2,
        min_backoff=10,
        max_backoff=20,
    )
    def flaky_once(order_id: int) -> None:
        calls.append(order_id)
        if len(calls) == 1:
            raise ConnectionError("warehouse connection reset")

    # When it runs, is retried and succeeds
    message_id = flaky_once.send(8).message_id
    wait_until(lambda: state(message_id) == "succeeded", what="the job succeeded on its retry")

    # Then the failed attempt is a WARNING with its traceback, and nothing is an ERROR
    warnings = [r for r in log.records if r.levelno == logging.WARNING and r.exc_info]
    assert len(warnings) == 1 and "ConnectionError" in repr(warnings[0].exc_info[1])
    assert log.at_least(logging.ERROR) == []


def test_a_job_that_fails_for_good_logs_one_error(stub_stack):
    broker, log = stub_stack

    # Given an actor that always fails unexpectedly, with one retry
    @dramatiq.actor(
        broker=broker,
        actor_name="tests.always_broken",
        queue_name="tests",
        max_retries=1,
        min_backoff=10,
        max_backoff=20,
    )
    def always_broken(order_id: int) -> None:
        raise RuntimeError(f"bug for order {order_id}")

    # When both attempts fail
    message_id = always_broken.send(9).message_id
    wait_until(lambda: log.dead_letter(message_id), what="the job dead-lettered")

    # Then each attempt is a WARNING, and the failure for good is one ERROR: its dead letter
    attempts = [r for r in log.records if r.levelno == logging.WARNING and r.exc_info]
    assert len(attempts) == 2
    errors = log.at_least(logging.ERROR)
    assert len(errors) == 1, errors
    assert "dead letter" in errors[0] and "reason=failed" in errors[0]
    assert repr(message_id) in errors[0]
