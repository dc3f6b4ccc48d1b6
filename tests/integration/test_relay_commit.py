"""The relay's commit after a confirmed publish: it never waits on a worker's ledger rows, and a
commit that fails is done again at once, so a batch RabbitMQ confirmed is not published twice.

CI once saw 46 of 100 jobs delayed 90 s run twice: the relay's ``UPDATE job_ledger`` (held jobs
become 'enqueued') locked rows in another order than the workers' ledger writers, which were
recording the same messages' runs; the relay lost the deadlock, rolled back the batch RabbitMQ had
confirmed, and published it again next round.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from typing import Any

import psycopg2
from sqlalchemy import text

import broker as shop_broker
from jobcore import outbox
from jobcore.db import session_scope
from jobcore.relay import Publisher, Relay, connect_psycopg
from middleware.outbox_relay import build_relay
from tests.support import amqp
from tests.support.faulty_actors import touch
from tests.support.ledger import entry
from tests.support.waiting import wait_until


def _held_and_due(count: int) -> list[str]:
    """``count`` service sends held in the outbox, already due."""
    with session_scope() as s:
        ids = [
            outbox.enqueue(s, touch, f"/nonexistent/{i}", delay_ms=600_000) for i in range(count)
        ]
    with session_scope() as s:
        s.execute(text("UPDATE outbox SET due_at = now() - interval '1 second'"))
    return ids


def _outbox_rows() -> int:
    with session_scope() as s:
        return int(s.execute(text("SELECT count(*) FROM outbox")).scalar())


def _relay_waits_on_a_lock() -> bool:
    with session_scope() as s:
        return bool(
            s.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND application_name LIKE 'shopjobs-relay%' AND datname = current_database()"
                )
            ).scalar()
        )


def test_a_relay_skips_ledger_rows_a_worker_holds_and_publishes_each_job_once(clean):
    # Given 5 held jobs now due, and a worker's ledger writer in the middle of recording the
    # run of two of them (their rows locked, 'running' not yet committed)
    amqp.declare("tests")
    ids = _held_and_due(5)
    writer = psycopg2.connect(os.environ["SHOPJOBS_DATABASE_URL"].replace("+psycopg2", ""))
    try:
        cur = writer.cursor()
        taken = sorted(ids)[-2:]
        cur.execute(
            "UPDATE job_ledger SET state = 'running', started_at = now() WHERE message_id = ANY(%s)",
            (taken,),
        )

        # When a relay publishes them
        relay = build_relay(shop_broker.settings, shop_broker.broker)
        results: list[int] = []
        errors: list[BaseException] = []

        def round_() -> None:
            try:
                results.append(relay.run_once())
            except BaseException as exc:  # noqa: BLE001  (reported by the assertion below)
                errors.append(exc)

        thread = threading.Thread(target=round_)
        thread.start()

        # Then its round ends while the writer still holds its rows: it never waits for them
        def ended_or_waiting() -> str | None:
            if not thread.is_alive():
                return "ended"
            return "waiting" if _relay_waits_on_a_lock() else None

        assert wait_until(ended_or_waiting, timeout=30, what="the relay's round") == "ended"
        thread.join()
        relay.stop()
        assert errors == [] and results == [5]
        writer.commit()
    finally:
        writer.close()

    # And each job was published once, its outbox row gone; the writer's rows keep 'running',
    # the others are 'enqueued'
    assert amqp.drain_ids("tests") == Counter({i: 1 for i in ids})
    assert _outbox_rows() == 0
    assert {i: entry(i).state for i in ids} == {
        i: "running" if i in taken else "enqueued" for i in ids
    }


class _DatabaseDropsAfterConfirm(Publisher):
    """Publishes for real, then the database ends the relay's session (as a restart, a
    failover or a killed backend would) before the relay can commit."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dropped = 0

    def publish(self, items: list[tuple[str, str, bytes, int | None]]) -> set[str]:
        confirmed = super().publish(items)
        if not self.dropped:
            with session_scope() as s:
                self.dropped = int(
                    s.execute(
                        text(
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                            " WHERE application_name = :name AND datname = current_database()"
                        ),
                        {"name": f"shopjobs-relay[{os.getpid()}]"},
                    ).scalar()
                )
        return confirmed


def test_a_relay_whose_commit_fails_after_the_confirms_deletes_the_rows_at_once(clean, caplog):
    # Given 20 jobs due in the outbox, and a relay whose database session is ended after
    # RabbitMQ confirmed its batch
    amqp.declare("tests")
    ids = _held_and_due(20)
    settings = shop_broker.settings
    publisher = _DatabaseDropsAfterConfirm(settings.amqp_url_with_heartbeat, lambda _q: None)
    relay = Relay(connect_psycopg(settings.psycopg_dsn), publisher)

    # When it runs its round, then another
    with caplog.at_level(logging.WARNING, logger="jobcore.relay"):
        first = relay.run_once()
    second = relay.run_once()
    relay.stop()

    # Then the fault bit (its session was ended mid-round), and the relay deleted the confirmed
    # rows again on a new session: every job published exactly once, nothing left behind
    assert publisher.dropped == 1
    assert "commit failed after RabbitMQ confirmed 20 messages" in caplog.text
    assert (first, second) == (20, 0)
    assert _outbox_rows() == 0
    assert amqp.drain_ids("tests") == Counter({i: 1 for i in ids})
    assert {entry(i).state for i in ids} == {"enqueued"}


class _HeldByTheBroker(Publisher):
    """Publishes for real once ``release`` is set: a broker holding the relay's publish back
    (a resource alarm blocks publishers)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def publish(self, items: list[tuple[str, str, bytes, int | None]]) -> set[str]:
        self.calls += 1
        self.entered.set()
        self.release.wait(60)
        return super().publish(items)


def test_a_relay_whose_thread_is_held_in_a_round_stops_without_a_second_round_beside_it(
    clean, caplog
):
    # Given a relay whose thread is inside a round the broker holds back
    amqp.declare("tests")
    ids = _held_and_due(3)
    settings = shop_broker.settings
    publisher = _HeldByTheBroker(settings.amqp_url_with_heartbeat, lambda _q: None)
    relay = Relay(connect_psycopg(settings.psycopg_dsn), publisher, poll_s=0.05).start()
    assert publisher.entered.wait(30), "the relay's thread began its round"

    # When the process stops it
    with caplog.at_level(logging.WARNING, logger="jobcore.relay"):
        relay.stop(timeout=0.5)

    # Then it returned without a last round of its own on the connections the thread uses
    assert publisher.calls == 1
    assert "did not stop within" in caplog.text

    # And once the broker lets the thread's round go, that round publishes each job once
    publisher.release.set()
    assert relay._thread is not None
    relay._thread.join(30)
    assert not relay._thread.is_alive()
    assert amqp.drain_ids("tests") == Counter({i: 1 for i in ids})
    assert _outbox_rows() == 0
