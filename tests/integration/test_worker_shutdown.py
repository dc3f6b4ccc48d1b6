"""A worker that stops leaves nothing behind: its LISTEN, its engine, its registry row.

The Worker runs in this process, on the project's real stack over this run's RabbitMQ vhost and
database, so the test can see the threads and the connections the middleware hold; a
``dramatiq`` process would close them anyway by exiting, and hide a hook that never ran.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

import dramatiq
import psycopg2
import pytest

from broker import build_broker, ledger_writer
from jobcore.cancellations import THREAD_NAME
from jobcore.ledger.writer import WORKER_NAME
from shop.settings import Settings
from tests.support.waiting import wait_until

PID = os.getpid()
LISTEN_NAME = f"shopjobs-cancellations[{PID}]"
ENGINE_NAME = f"shopjobs[{PID}]"
LEDGER_NAME = f"shopjobs-ledger[{PID}]"


def _observe(sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Ask PostgreSQL on a connection of its own (the process's engine must stay untouched)."""
    dsn = Settings.from_env().psycopg_dsn
    conn = psycopg2.connect(dsn, application_name="shopjobs-test-observer")
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())
    finally:
        conn.close()


def _connections(application_name: str) -> int:
    return int(
        _observe(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", application_name
        )[0][0]
    )


def _registered() -> bool:
    name = WORKER_NAME.format(pid=PID)
    return bool(_observe("SELECT 1 FROM worker_processes WHERE name = %s", name))


def _watch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


@pytest.fixture()
def real_stack(clean: None) -> Iterator[dramatiq.Broker]:
    """The project's RabbitMQ broker and middleware stack, booted as ``dramatiq`` boots a process.

    Booting configures this process's logging (LogContext); pytest's handlers are put back after.
    """
    broker = build_broker(Settings.from_env())
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        broker.emit_after("process_boot")
        yield broker
    finally:
        root.handlers[:], root.level = handlers, level
        writer = ledger_writer(broker)
        if writer is not None:
            writer.close(5)
        broker.close()


def test_a_stopped_worker_closes_its_listen_connection_and_engine_after_draining(real_stack):
    # Given a worker on the real stack, running a job that waits for the test's word
    started, release = threading.Event(), threading.Event()

    @dramatiq.actor(
        broker=real_stack, actor_name="tests.wait_for_release", queue_name="tests", max_retries=0
    )
    def wait_for_release() -> None:
        started.set()
        release.wait(30)

    # other ledger writers of this test process (the producers' own) may hold a connection too
    ledger_before = _connections(LEDGER_NAME)
    worker = dramatiq.Worker(real_stack, worker_threads=2, worker_timeout=100)
    worker.start()
    stopper = threading.Thread(target=worker.stop, name="test-worker-stop")
    try:
        wait_for_release.send()
        assert started.wait(30), "the job did not start"
        wait_until(lambda: _connections(LISTEN_NAME) == 1, 10, what="the LISTEN connection")
        assert _connections(ENGINE_NAME) >= 1 and _registered() and _watch_threads()
        wait_until(
            lambda: _connections(LEDGER_NAME) > ledger_before,
            10,
            what="the ledger writer's connection",
        )

        # When the worker is told to stop while the job still runs
        stopper.start()
        wait_until(
            lambda: not any(t.running for t in worker.workers),
            10,
            what="worker threads told to stop",
        )

        # Then, while it drains, it is still listed as a worker and still listens
        assert _registered(), "a draining worker vanished from `shopjobs workers`"
        assert _connections(LISTEN_NAME) == 1

        # And once its job finished and the worker has stopped, nothing of it remains
        release.set()
        stopper.join(30)
        assert not stopper.is_alive(), "the worker did not stop"
    finally:
        release.set()
        if stopper.ident is None:
            worker.stop()
        else:
            stopper.join(30)
    assert not _watch_threads(), "the LISTEN thread is still alive"
    wait_until(lambda: _connections(LISTEN_NAME) == 0, 10, what="the LISTEN connection closed")
    wait_until(lambda: _connections(ENGINE_NAME) == 0, 10, what="the engine's connections closed")
    wait_until(
        lambda: _connections(LEDGER_NAME) <= ledger_before,
        10,
        what="the ledger writer's connection closed",
    )
    assert not _registered(), "the stopped worker is still registered"
