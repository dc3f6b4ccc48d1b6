"""A relay killed with SIGKILL again and again loses nothing: rows go only after their confirm."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter

import broker as shop_broker
from jobcore import sends
from jobcore.db import session_scope
from middleware.outbox_relay import build_relay
from tests.support import amqp
from tests.support.faulty_actors import touch
from tests.support.waiting import wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _outbox_rows() -> int:
    from sqlalchemy import text

    with session_scope() as s:
        return int(s.execute(text("SELECT count(*) FROM outbox")).scalar())


def _commit_sends(first: int, count: int) -> list[str]:
    """``count`` committed sends, due now, as a job's outcome would leave them."""
    batch = [
        sends.make_send(shop_broker.broker, touch.message(f"/nonexistent/{i}"), None, 30_000)
        for i in range(first, first + count)
    ]
    sends.store_sends(batch)
    return [s.message_id for s in batch]


def _start_relay(log: object) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.relay_process"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=log,
    )  # type: ignore[arg-type]
    assert proc.stdout is not None and b"relay ready" in proc.stdout.readline()
    return proc


def _reap(proc: subprocess.Popen[bytes]) -> None:
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def test_a_relay_killed_ten_times_while_publishing_loses_no_message(clean, tmp_path):
    # Given committed sends arriving while a relay publishes them
    amqp.declare("tests")
    ids: list[str] = []
    kills = 0
    with open(tmp_path / "relay.log", "wb") as log:
        # When the relay is killed with SIGKILL ten times, each time mid-stream
        for _ in range(10):
            ids += _commit_sends(len(ids), 300)
            before = _outbox_rows()
            relay = _start_relay(log)
            wait_until(
                lambda before=before: _outbox_rows() < before,
                timeout=30,
                interval=0.01,
                what="the relay publishing",
            )
            os.kill(relay.pid, signal.SIGKILL)
            _reap(relay)
            kills += 1
            ids += _commit_sends(len(ids), 100)
        # Then a relay started afterwards publishes everything that is left
        relay = _start_relay(log)
        try:
            wait_until(lambda: _outbox_rows() == 0, timeout=60, what="the outbox drained")
        finally:
            relay.terminate()
            _reap(relay)

    # And every message reached the queue: none lost, a few at most twice (killed between a
    # confirm and its row's delete), which consumers dedupe
    wait_until(lambda: amqp.depth("tests") >= len(ids), what="every message in the queue")
    seen = amqp.drain_ids("tests")
    assert kills == 10 and set(seen) == set(ids)
    doubled = sum(n - 1 for n in seen.values())
    print(
        f"\nrelay SIGKILLed {kills} times: {len(ids)} messages, none lost, {doubled} published twice"
    )
    assert doubled <= kills * 100  # at most one batch per kill


def test_a_message_returned_because_its_queue_was_deleted_stays_until_the_queue_is_back(clean):
    # Given a committed send whose queue an operator has just deleted
    amqp.declare("tests")
    [message_id] = _commit_sends(0, 1)
    with amqp.channel() as ch:
        ch.queue_delete("tests")
    relay = build_relay(shop_broker.settings, shop_broker.broker)

    # When the relay publishes it, RabbitMQ returns it (mandatory): the row stays, the queue
    # is declared again
    assert relay.run_once() == 0
    assert _outbox_rows() == 1 and amqp.depth("tests") == 0

    # Then the next round delivers it, and only then is the row deleted
    assert relay.run_once() == 1
    relay.stop()
    assert _outbox_rows() == 0
    assert amqp.drain_ids("tests") == Counter({message_id: 1})
