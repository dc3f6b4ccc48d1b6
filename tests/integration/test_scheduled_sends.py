"""A delayed send held in PostgreSQL is ``scheduled`` with its due time until a relay publishes it.

The ledger says what the outbox holds: ``scheduled`` (with ``eta`` = the outbox row's
``due_at``) while the send waits, ``enqueued`` from the commit that publishes it. The CLI,
the console and the stranded-work check read ``scheduled`` as waiting by design, until it is
overdue.
"""

from __future__ import annotations

import json
import os
import threading

import psycopg2
import pytest
from sqlalchemy import text

import broker as shop_broker
from jobcore import outbox
from jobcore import relay as relay_module
from jobcore.console.queries.overview import live_counts, oldest_waiting
from jobcore.db import session_scope
from middleware.outbox_relay import build_relay
from programs.cli import main as cli
from tests.support import amqp
from tests.support.faulty_actors import touch
from tests.support.ledger import entry
from tests.support.waiting import wait_until


def _due_at(message_id: str) -> object:
    with session_scope() as s:
        return s.execute(
            text("SELECT due_at FROM outbox WHERE message_id = :id"), {"id": message_id}
        ).scalar()


def _cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, object]:
    code = cli([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def _make_overdue(message_id: str, by_s: int) -> None:
    """As if the send had been held ``by_s`` seconds past its due time (no relay ran)."""
    with session_scope() as s:
        s.execute(
            text(
                "UPDATE outbox SET due_at = now() - make_interval(secs => :s)"
                " WHERE message_id = :id"
            ),
            {"s": by_s, "id": message_id},
        )
        s.execute(
            text(
                "UPDATE job_ledger SET eta = now() - make_interval(secs => :s),"
                " enqueued_at = now() - make_interval(secs => :s + 60) WHERE message_id = :id"
            ),
            {"s": by_s, "id": message_id},
        )


def test_a_held_send_is_scheduled_with_its_due_time_then_enqueued_by_the_relays_commit(
    clean, capsys
):
    # Given a service's send held for 10 minutes and one sent with a plain delay of 2 minutes
    amqp.declare("tests")
    with session_scope() as s:
        by_service = outbox.enqueue(s, touch, "/nonexistent/a", delay_ms=600_000)
    by_delay = touch.send_with_options(args=("/nonexistent/b",), delay=120_000).message_id

    # Then both are 'scheduled' in the ledger, due when their outbox rows are due, and no
    # queue has waited for them yet
    with session_scope() as s:
        assert "tests" not in oldest_waiting(s)
    for message_id in (by_service, by_delay):
        row = entry(message_id)
        assert row.state == "scheduled" and row.eta is not None
        assert row.eta == _due_at(message_id)
    assert amqp.depth("tests") == 0

    # And the operator's commands show them as such
    code, shown = _cli_json(capsys, "jobs", "show", by_service)
    assert code == 0 and shown["state"] == "scheduled" and shown["eta"] is not None
    code, listed = _cli_json(capsys, "jobs", "list", "--state", "scheduled")
    assert code == 0 and {r["message_id"] for r in listed} == {by_service, by_delay}
    assert all(r["eta"] for r in listed)
    with session_scope() as s:
        assert live_counts(s)["tests"] == {"delayed": 2}  # the console's overview

    # And nothing not yet due is stranded, however small the threshold
    code, found = _cli_json(capsys, "jobs", "stranded", "--older-than", "0")
    assert code == 0 and found["counts"] == {"unpublished": 0, "lost": 0, "orders": 0}

    # When one is overdue by 2 minutes with no relay running
    _make_overdue(by_delay, 120)

    # Then its wait counts as the queue's oldest (the console, the metric), and it is
    # stranded, unpublished, past the threshold (and not before it)
    with session_scope() as s:
        assert 119 <= oldest_waiting(s)["tests"] < 130
    code, found = _cli_json(capsys, "jobs", "stranded", "--older-than", "60")
    assert code == 1 and found["counts"]["unpublished"] == 1
    assert found["stranded"][0]["message_id"] == by_delay
    code, found = _cli_json(capsys, "jobs", "stranded", "--older-than", "300")
    assert code == 0

    # When a relay runs: it publishes the due one only, and its commit makes it 'enqueued'
    relay = build_relay(shop_broker.settings, shop_broker.broker)
    assert relay.run_once() == 1
    relay.stop()
    assert amqp.depth("tests") == 1
    published = entry(by_delay)
    assert published.state == "enqueued" and _due_at(by_delay) is None
    assert published.state_changed_at > published.eta
    assert entry(by_service).state == "scheduled" and _due_at(by_service) is not None

    # And it is not stranded: its message waits in its queue
    code, found = _cli_json(capsys, "jobs", "stranded", "--older-than", "60")
    assert code == 0 and found["counts"]["lost"] == 0


def test_a_scheduled_job_overdue_with_no_outbox_row_is_lost_and_cancel_takes_a_scheduled_one(
    clean, capsys
):
    # Given two held sends; one's outbox row vanished (deleted by hand) 2 minutes past due
    amqp.declare("tests")
    with session_scope() as s:
        gone = outbox.enqueue(s, touch, "/nonexistent/c", delay_ms=60_000)
        kept = outbox.enqueue(s, touch, "/nonexistent/d", delay_ms=60_000)
    _make_overdue(gone, 120)
    with session_scope() as s:
        s.execute(text("DELETE FROM outbox WHERE message_id = :id"), {"id": gone})

    # Then the check lists it as lost: 'scheduled', overdue, in no outbox and no queue
    code, found = _cli_json(capsys, "jobs", "stranded", "--older-than", "60")
    assert code == 1 and found["counts"]["lost"] == 1
    [lost] = [r for r in found["stranded"] if r["kind"] == "lost"]
    assert lost["message_id"] == gone and lost["state"] == "scheduled"

    # When an operator cancels the other before it is due
    assert cli(["jobs", "cancel", kept, "--reason", "not needed"]) == 0

    # Then it is cancelled and its outbox row is gone: no relay will ever publish it
    assert entry(kept).state == "cancelled" and _due_at(kept) is None
    relay = build_relay(shop_broker.settings, shop_broker.broker)
    assert relay.run_once() == 0
    relay.stop()
    assert amqp.depth("tests") == 0


def test_a_cancel_meeting_a_relay_that_is_publishing_the_job_waits_for_it_and_neither_deadlocks(
    clean,
):
    # Given a held send, and a relay's transaction in the middle of publishing it: its outbox
    # row locked as the relay's SELECT ... FOR UPDATE SKIP LOCKED takes it
    with session_scope() as s:
        message_id = outbox.enqueue(s, touch, "/nonexistent/e", delay_ms=60_000)
    relay_db = psycopg2.connect(os.environ["SHOPJOBS_DATABASE_URL"].replace("+psycopg2", ""))
    try:
        cur = relay_db.cursor()
        cur.execute("SELECT id FROM outbox WHERE message_id = %s FOR UPDATE", (message_id,))

        # When an operator cancels it meanwhile
        codes: list[int] = []
        canceller = threading.Thread(
            target=lambda: codes.append(cli(["jobs", "cancel", message_id, "--reason", "r"]))
        )
        canceller.start()

        # Then the cancel waits for the relay's row (outbox rows first, as the relay takes them)
        def cancel_waits() -> bool:
            with session_scope() as s:
                return bool(
                    s.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                            " AND datname = current_database()"
                        )
                    ).scalar()
                )

        wait_until(cancel_waits, timeout=10, what="the cancel waiting for the relay's lock")

        # When the relay ends its round as it does: row deleted, ledger row 'enqueued', commit
        cur.execute("DELETE FROM outbox WHERE message_id = %s", (message_id,))
        cur.execute(relay_module._PUBLISHED, ([message_id],))
        relay_db.commit()
    finally:
        relay_db.close()
    canceller.join(timeout=30)

    # Then neither deadlocked: the relay committed, and the cancel marked the published job
    # cancelled (workers skip it when it arrives)
    assert codes == [0]
    assert entry(message_id).state == "cancelled" and _due_at(message_id) is None
