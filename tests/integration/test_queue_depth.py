"""Workers report the messages they hold, so a job waiting in a prefetch is not lost."""

from __future__ import annotations

import os

import broker  # noqa: F401  (builds the process: settings, database, routing table)
from jobcore import queue_depth, worker_registry
from jobcore.db import session_scope
from jobcore.ledger import lost
from jobcore.models.workers import WorkerProcess
from tests.support.faulty_actors import hang_first_time, touch
from tests.support.waiting import wait_until


def _lost() -> set[str]:
    with session_scope() as s:
        return lost.lost_ids(s, os.environ["SHOPJOBS_AMQP_URL"], 0, fifo=True)


def _held_ids() -> list[str]:
    with session_scope() as s:
        return [i for w in s.query(WorkerProcess).all() for i in w.held_ids]


def _held(queue: str) -> int:
    with session_scope() as s:
        return worker_registry.held(s).get(queue, 0)


def test_a_message_prefetched_by_a_busy_worker_is_held_by_its_id_not_lost(start_worker, tmp_path):
    # Given a worker with one thread, busy with a job that hangs
    start_worker("actors", "tests.support.faulty_actors", threads=1, shutdown_timeout_ms=1000)
    hang_first_time.send(str(tmp_path / "hanging"))
    wait_until(lambda: (tmp_path / "hanging").exists(), what="the hanging job running")

    # When a second job of its queue is delivered to it and waits in its prefetch
    waiting = touch.send(str(tmp_path / "touched")).message_id
    wait_until(lambda: _held("tests") == 2, timeout=15, what="the worker reporting 2 held")
    wait_until(lambda: waiting in _held_ids(), timeout=15, what="the worker listing its id")

    # Then RabbitMQ has nothing ready, yet the waiting job is not lost: a live worker holds it
    assert queue_depth.ready(os.environ["SHOPJOBS_AMQP_URL"], ["tests"]) == {"tests": 0}
    assert waiting not in _lost()
    assert not (tmp_path / "touched").exists()


def test_a_queue_that_does_not_exist_holds_nothing(clean):
    assert queue_depth.ready(os.environ["SHOPJOBS_AMQP_URL"], ["no-such-queue"]) == {
        "no-such-queue": 0
    }
