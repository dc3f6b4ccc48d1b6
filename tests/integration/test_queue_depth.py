"""A queue's depth counts the messages workers hold, so a job waiting in a prefetch is not lost."""

from __future__ import annotations

import os

import broker  # noqa: F401  (builds the process: settings, database, routing table)
from jobcore import queue_depth
from jobcore.db import session_scope
from tests.support.faulty_actors import hang_first_time, touch
from tests.support.waiting import wait_until


def _depth(queue: str) -> int:
    with session_scope() as s:
        return queue_depth.Depths(s, os.environ["SHOPJOBS_AMQP_URL"])(queue)


def _held(queue: str) -> int:
    with session_scope() as s:
        return queue_depth.held(s).get(queue, 0)


def test_a_message_prefetched_by_a_busy_worker_counts_in_its_queues_depth(start_worker, tmp_path):
    # Given a worker with one thread, busy with a job that hangs
    start_worker("actors", "tests.support.faulty_actors", threads=1, shutdown_timeout_ms=1000)
    hang_first_time.send(str(tmp_path / "hanging"))
    wait_until(lambda: (tmp_path / "hanging").exists(), what="the hanging job running")

    # When a second job of its queue is delivered to it and waits in its prefetch
    touch.send(str(tmp_path / "touched"))
    wait_until(lambda: _held("tests") == 2, timeout=15, what="the worker reporting 2 held")

    # Then RabbitMQ has nothing ready, yet the queue's depth counts both messages
    assert queue_depth.ready(os.environ["SHOPJOBS_AMQP_URL"], ["tests"]) == {"tests": 0}
    assert _depth("tests") == 2
    assert not (tmp_path / "touched").exists()


def test_a_queue_that_does_not_exist_holds_nothing(clean):
    assert queue_depth.ready(os.environ["SHOPJOBS_AMQP_URL"], ["no-such-queue"]) == {
        "no-such-queue": 0
    }
