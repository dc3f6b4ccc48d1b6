"""RabbitMQ's consumer_timeout at 15 s: jobs delayed 90 s run once, on time, and no channel closes.

RabbitMQ closes a channel whose delivery stays unacked past ``consumer_timeout`` (406
PRECONDITION_FAILED), checked on the channel's tick (once a minute). Dramatiq's ``.DQ`` path
holds a delayed message unacked in the worker until its ETA, so a 90 s delay would close the
worker's channel; ours wait in PostgreSQL and reach a queue when due.

The test lowers the broker's setting (``rabbitmqctl eval``) only while its own channels open:
a channel reads ``consumer_timeout`` when it opens, so the workers' consumers and the control
keep 15 s after the previous value is restored (in a finally), and other tests sharing the
broker see the low value for a few seconds only. The control, a raw consumer that holds one
delivery unacked, proves the low timeout was in force: its channel is closed with 406.
Channels closed are counted in the broker's log (by vhost and client port) and as consumer
restarts in the workers' log. Marker ``serial``: it changes the shared broker for a moment.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from devtools.chaos.consumer_timeout import closed_for_unacked
from devtools.held_delivery import HeldDelivery
from jobcore.db import session_scope
from tests import conftest
from tests.support import amqp
from tests.support.faulty_actors import touch
from tests.support.ledger import state
from tests.support.waiting import wait_until

TIMEOUT_MS = 15_000
DELAY_MS = 90_000
JOBS = 100
PROCESSES = 2
CONTROL_QUEUE = "tests.consumer-timeout-control"


def _eval(expression: str) -> str:
    done = subprocess.run(
        ["rabbitmqctl", "eval", expression], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.strip()


@contextlib.contextmanager
def _consumer_timeout(ms: int) -> Iterator[None]:
    """The broker's consumer_timeout is ``ms`` inside; the previous value (or none) after."""
    before = _eval("application:get_env(rabbit, consumer_timeout).")
    _eval(f"application:set_env(rabbit, consumer_timeout, {ms}).")
    try:
        yield
    finally:
        found = re.fullmatch(r"\{ok,(\d+)\}", before)
        if found:
            _eval(f"application:set_env(rabbit, consumer_timeout, {found[1]}).")
        else:
            _eval("application:unset_env(rabbit, consumer_timeout).")
        assert _eval("application:get_env(rabbit, consumer_timeout).") == before


def _broker_log() -> Path:
    logs = [p for p in glob.glob("/var/log/rabbitmq/rabbit@*.log") if "_upgrade" not in p]
    assert len(logs) == 1, f"cannot tell the broker's log among {logs}"
    return Path(logs[0])


def _consumers() -> dict[str, int]:
    """queue -> consumers on it in this run's vhost."""
    out = subprocess.run(
        ["rabbitmqctl", "-q", "list_consumers", "-p", conftest.VHOST, "queue_name"]
        + ["--formatter", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    counts: dict[str, int] = {}
    for row in json.loads(out or "[]"):
        counts[row["queue_name"]] = counts.get(row["queue_name"], 0) + 1
    return counts


@pytest.mark.serial
@pytest.mark.long_fault  # its catalogue row T15 (tests/chaos, the full fault suite) covers it in CI's budget
def test_jobs_delayed_90s_run_once_on_time_and_no_channel_times_out_at_a_15s_consumer_timeout(
    start_worker, tmp_path, capsys
):
    log = _broker_log()
    offset = log.stat().st_size
    amqp.declare("tests")

    # Given workers and a control consumer whose channels opened under a 15 s consumer_timeout
    window = time.monotonic()
    with _consumer_timeout(TIMEOUT_MS):
        worker = start_worker(
            "actors", "tests.support.faulty_actors", processes=PROCESSES, threads=4
        )
        control = HeldDelivery(os.environ["SHOPJOBS_AMQP_URL"], CONTROL_QUEUE)
        wait_until(
            lambda: all(_consumers().get(q, 0) >= PROCESSES for q in ("tests", "tests.DQ")),
            timeout=30,
            what="every worker process consuming tests and tests.DQ",
        )
    window = time.monotonic() - window
    try:
        control.hold_one()

        # When 100 jobs are sent 90 s ahead
        paths = [tmp_path / f"job-{i}" for i in range(JOBS)]
        ids = [touch.send_with_options(args=(str(p),), delay=DELAY_MS).message_id for p in paths]

        # Then each runs exactly once
        wait_until(
            lambda: all(state(i) == "succeeded" for i in ids),
            timeout=DELAY_MS / 1000 + 30,
            interval=1.0,
            what="every delayed job ran",
        )
        # And the control's channel, held unacked past 15 s, was closed with 406: the low
        # timeout was in force (the broker checks it once a minute)
        wait_until(control.closed, timeout=60, interval=1.0, what="the control's channel closed")
        assert control.delivered == 1 and control.closed_with == 406
        closed = wait_until(
            lambda: closed_for_unacked(str(log), offset, conftest.VHOST) or None,
            timeout=10,
            what="the broker logged the control's close",
        )

        # And no other channel of this run was closed for an unacked delivery: not in the
        # broker's log, and no worker's consumer restarted
        assert closed == [control.port]
        restarts = worker.log().count("Consumer encountered a connection error")
        assert restarts == 0

        # And each ran within 5 s of its due time by the database clock
        with session_scope() as s:
            late = sorted(
                float(x)
                for x in s.scalars(
                    text(
                        "SELECT EXTRACT(EPOCH FROM started_at - eta) FROM job_ledger"
                        " WHERE message_id = ANY(:ids) AND attempts = 1 AND eta IS NOT NULL"
                    ),
                    {"ids": ids},
                )
            )
        assert [len(p.read_text().splitlines()) for p in paths] == [1] * JOBS
        assert len(late) == JOBS and -5 <= late[0] and late[-1] <= 5, (late[0], late[-1])
        with capsys.disabled():
            print(
                f"\nconsumer_timeout {TIMEOUT_MS} ms, {JOBS} jobs delayed {DELAY_MS // 1000} s: "
                f"lateness min {late[0]:.3f}s median {late[JOBS // 2]:.3f}s max {late[-1]:.3f}s; "
                f"channels closed with 406: workers 0, control 1; consumer restarts {restarts}; "
                f"the broker's setting was low for {window:.1f}s"
            )
    finally:
        control.close()
