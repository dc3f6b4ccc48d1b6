"""A send made inside a transaction is published only after COMMIT; the relay catches stragglers."""

from __future__ import annotations

import logging

import dramatiq
import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from sqlalchemy import func, select

from jobcore import outbox
from jobcore.db import session_scope
from jobcore.models import LedgerEntry, OutboxMessage
from tests.support import amqp
from tests.support.faulty_actors import noop
from tests.support.waiting import wait_until


def _outbox_rows() -> int:
    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(OutboxMessage))


def test_nothing_is_published_before_commit_and_the_message_follows_it(clean):
    amqp.declare("tests")
    with session_scope() as s:
        message_id = outbox.enqueue(s, noop, 5)
        # inside the open transaction: nothing published, and no other session sees the job
        assert amqp.depth("tests") == 0
        with session_scope() as other:
            assert other.get(LedgerEntry, message_id) is None
    wait_until(lambda: amqp.depth("tests") == 1, what="published after commit")
    with session_scope() as s:
        row = s.get(LedgerEntry, message_id)
        assert row.state == "enqueued" and row.order_id == 5
    assert _outbox_rows() == 0


def test_a_rollback_publishes_nothing(clean):
    amqp.declare("tests")
    with pytest.raises(RuntimeError), session_scope() as s:
        message_id = outbox.enqueue(s, noop, 6)
        raise RuntimeError("the business write failed")
    with session_scope() as s:
        assert s.get(LedgerEntry, message_id) is None
    assert _outbox_rows() == 0
    assert amqp.depth("tests") == 0


def test_the_relay_publishes_what_an_after_commit_publish_missed(clean):
    # Given a committed outbox row whose after-commit publish never happened (a crash)
    amqp.declare("tests")
    with session_scope() as s:
        outbox.enqueue(s, noop, 7)
        s.info.pop("shopjobs.outbox")
    assert _outbox_rows() == 1 and amqp.depth("tests") == 0

    # When the relay runs
    published = outbox.relay_pending(older_than_s=0)

    # Then the message is in its queue and the outbox is empty
    assert published == 1
    wait_until(lambda: amqp.depth("tests") == 1, what="relayed message")
    assert _outbox_rows() == 0


def test_a_transactions_sends_are_written_together_seen_by_its_own_queries_and_a_savepoint_keeps_its_own(
    clean,
):
    # Given a transaction that sends, reads its own job back, sends inside a savepoint that
    # rolls back, then sends 200 more
    amqp.declare("tests")
    with session_scope() as s:
        first = outbox.enqueue(s, noop, 1)
        assert s.get(LedgerEntry, first).state == "enqueued"  # its own query sees the row
        with pytest.raises(RuntimeError), s.begin_nested():
            undone = outbox.enqueue(s, noop, 2)
            raise RuntimeError("the savepoint's business write failed")
        many = [outbox.enqueue(s, noop, 100 + i) for i in range(200)]

    # Then every send but the savepoint's is recorded and published, once
    wait_until(lambda: amqp.depth("tests") == 201, what="201 messages published")
    with session_scope() as s:
        assert s.get(LedgerEntry, undone) is None
        recorded = s.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.message_id.in_([first, *many]))
        )
    assert recorded == 201
    assert _outbox_rows() == 0


def test_with_a_relay_in_the_process_the_commit_wakes_it_and_nothing_waits_for_a_confirm(clean):
    # Given this process hands its sends to a relay
    import broker
    from middleware.outbox_relay import build_relay

    amqp.declare("tests")
    relay = build_relay(broker.settings, broker.broker)
    relay.poll_s = 60.0  # only a wake makes it look
    relay.start()
    outbox.relay_sends_with(relay)
    try:
        # When a transaction sends 50 messages and commits
        with session_scope() as s:
            sent = [outbox.enqueue(s, noop, i) for i in range(50)]
            assert "shopjobs.outbox" not in s.info  # no publish of its own after commit

        # Then the relay, woken by the commit, publishes them all and empties the outbox
        wait_until(lambda: amqp.depth("tests") == 50, timeout=10, what="relayed at once")
        wait_until(lambda: _outbox_rows() == 0, what="outbox emptied")
        assert relay.published == 50
        with session_scope() as s:
            states = s.scalars(select(LedgerEntry.state).where(LedgerEntry.message_id.in_(sent)))
            assert set(states) == {"enqueued"}
    finally:
        outbox.relay_sends_with(None)
        relay.stop()


def test_with_the_broker_away_a_transactions_sends_go_to_the_relays_after_one_try(clean, caplog):
    # Given RabbitMQ refusing connections (a broker on a port nobody listens on)
    app_broker = dramatiq.get_broker()
    away = RabbitmqBroker(url="amqp://guest:guest@127.0.0.1:1/%2F")
    dramatiq.set_broker(away)
    try:
        # When a transaction with three sends commits
        with caplog.at_level(logging.WARNING, logger="jobcore.outbox"), session_scope() as s:
            ids = [outbox.enqueue(s, noop, i) for i in range(3)]
    finally:
        dramatiq.set_broker(app_broker)
        away.close()

    # Then the first publish met the refused connection, and one line without a traceback says
    # the three wait for the relays (the other two were not tried)
    records = [r for r in caplog.records if r.name == "jobcore.outbox"]
    assert len(records) == 1, [r.getMessage() for r in records]
    assert "ConnectionClosed" in records[0].getMessage() and not records[0].exc_info
    assert "with the 2 sends after it" in records[0].getMessage()

    # And all three rows are due now, for the relays' next round
    with session_scope() as s:
        due = s.scalars(
            select(OutboxMessage.message_id).where(OutboxMessage.due_at.is_not(None))
        ).all()
    assert sorted(due) == sorted(ids)
