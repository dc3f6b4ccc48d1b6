"""Actors and faults for the durable-send tests, loaded as extra worker modules.

``SHOPJOBS_TEST_RELAY_FAULTS=<path>``: the relay's first publish after each commit of job sends
fails (``ConnectionError``), at most ``SHOPJOBS_TEST_RELAY_FAULT_TIMES`` times; each injected
failure appends a line to ``<path>`` (the evidence that the fault bit). Sends of the actors in
``SHOPJOBS_TEST_DIRECT_PUBLISH_FAILS`` (comma-separated) fail whenever they are published
straight to RabbitMQ, as an after-commit publish from inside a job would be.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import dramatiq

import broker  # noqa: F401  (the project's broker and middleware stack)
from jobcore import outbox, relay
from jobcore.acks import LedgerAckedRabbitmqBroker
from jobcore.db import session_scope
from tests.support.faulty_actors import touch

QUEUE = "tests"


@dramatiq.actor(
    actor_name="tests.retry_later",
    queue_name=QUEUE,
    max_retries=1,
    min_backoff=6000,
    max_backoff=6000,
)
def retry_later(path: str) -> None:
    """Fails on its first run (its retry waits 3-6 s); each run appends a line to ``path``."""
    with open(path, "a") as fh:
        fh.write("run\n")
    with open(path) as fh:
        if len(fh.readlines()) == 1:
            raise RuntimeError("first run fails")


@dramatiq.actor(actor_name="tests.hand_on", queue_name=QUEUE, max_retries=0)
def hand_on(path: str, delay_ms: int = 0) -> None:
    """A job that sends a follow-up (``tests.touch``), with a delay when asked."""
    touch.send_with_options(args=(path,), delay=delay_ms or None)


@dramatiq.actor(actor_name="tests.send_then_fail", queue_name=QUEUE, max_retries=0)
def send_then_fail(path: str) -> None:
    touch.send(path)
    raise RuntimeError("the job fails after its send")


def _install_faults() -> None:
    evidence = os.environ.get("SHOPJOBS_TEST_RELAY_FAULTS")
    if evidence:
        times = int(os.environ.get("SHOPJOBS_TEST_RELAY_FAULT_TIMES", "1000000"))
        lock = threading.Lock()
        publish = relay.Publisher.publish
        state = {"armed": True, "injected": 0}

        def failing_publish(self: relay.Publisher, items: list[Any]) -> set[str]:
            with lock:
                fail = state["armed"] and state["injected"] < times
                if fail:
                    state["injected"] += 1
                state["armed"] = not fail  # the retry of a failed round goes through
            if fail:
                with open(evidence, "a") as fh:
                    fh.write(f"{len(items)}\n")
                raise ConnectionError("injected: the broker went away right after the commit")
            state["armed"] = True
            return publish(self, items)

        relay.Publisher.publish = failing_publish  # type: ignore[method-assign]
    blocked = {a for a in os.environ.get("SHOPJOBS_TEST_DIRECT_PUBLISH_FAILS", "").split(",") if a}
    if blocked:
        enqueue = LedgerAckedRabbitmqBroker.enqueue

        def failing_enqueue(self: Any, message: Any, *, delay: int | None = None) -> Any:
            if message.actor_name in blocked:
                raise ConnectionError(f"injected: direct publish of {message.actor_name} fails")
            return enqueue(self, message, delay=delay)

        LedgerAckedRabbitmqBroker.enqueue = failing_enqueue  # type: ignore[method-assign]


@dramatiq.actor(actor_name="tests.enqueue_then_roll_back", queue_name=QUEUE, max_retries=0)
def enqueue_then_roll_back(path: str) -> None:
    """Sends through the outbox in a transaction that then rolls back: nothing may leave."""
    with session_scope() as s:
        outbox.enqueue(s, touch, path)
        raise RuntimeError("the business write failed")


_install_faults()
