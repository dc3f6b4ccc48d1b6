"""A send made inside a transaction is published only after COMMIT; the relay catches stragglers."""

from __future__ import annotations

import pytest
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
