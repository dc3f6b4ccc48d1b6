"""Which waiting jobs are lost (``jobcore.ledger.lost``), on real PostgreSQL and RabbitMQ: by the
workers' lists of held ids, and by the queue's order while other jobs keep flowing."""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pytest
from sqlalchemy import text

import broker  # noqa: F401  (builds the process: settings, database, routing table)
from jobcore.db import session_scope
from jobcore.ledger import lost
from jobcore.models import LedgerEntry
from tests.support import amqp
from tests.support.workers import register_elsewhere


def _ago(seconds: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)


def _job(state: str, enqueued_s: float, started_s: float | None = None) -> str:
    message_id = str(uuid.uuid4())
    with session_scope() as s:
        s.add(
            LedgerEntry(
                message_id=message_id,
                actor="orders.reserve_inventory",
                queue="orders",
                state=state,
                state_changed_at=_ago(started_s if started_s is not None else enqueued_s),
                enqueued_at=_ago(enqueued_s),
                started_at=_ago(started_s) if started_s is not None else None,
            )
        )
    return message_id


def _worker(beat_s: float, held_ids: list[str] | None = None) -> None:
    register_elsewhere("orders", held_ids, beat_s)


def _lost(fifo: bool = True) -> set[str]:
    with session_scope() as s:
        return lost.lost_ids(s, os.environ["SHOPJOBS_AMQP_URL"], 0, fifo=fifo)


@pytest.fixture
def busy_queue(clean) -> None:
    """The orders queue has messages ready (the others' jobs flow): the empty rule cannot fire."""
    amqp.declare("orders")
    amqp.publish_raw("orders", b"{}")
    assert amqp.depth("orders") == 1


def test_a_job_overtaken_by_a_later_job_of_its_fifo_queue_is_lost(busy_queue):
    # Given a waiting job, and a job of its queue enqueued after it that started 40 s ago
    waiting = _job("enqueued", enqueued_s=60)
    _job("succeeded", enqueued_s=50, started_s=40)
    _worker(beat_s=1)

    # Then it is lost though its queue is not empty: it would have been delivered first
    assert waiting in _lost()
    # unless the queues have priorities (no order to go by)
    assert waiting not in _lost(fifo=False)


def test_a_job_a_live_worker_holds_or_one_handed_back_is_not_lost(busy_queue):
    held = _job("enqueued", enqueued_s=60)
    handed_back = _job("enqueued", enqueued_s=59)
    _job("succeeded", enqueued_s=50, started_s=40)
    _worker(beat_s=1, held_ids=[held])
    with session_scope() as s:
        s.execute(
            text("INSERT INTO requeued_messages (message_id) VALUES (:m)"), {"m": handed_back}
        )

    found = _lost()
    assert held not in found and handed_back not in found


@pytest.mark.parametrize(
    ("started_s", "beat_s"),
    [
        (lost.OVERTAKEN_S - 3, 1),  # the later job started too recently
        (lost.OVERTAKEN_S + 3, 15),  # a live worker has not beaten since (its list may predate)
    ],
)
def test_a_job_is_not_lost_before_every_live_worker_could_have_listed_it(
    busy_queue, started_s, beat_s
):
    waiting = _job("enqueued", enqueued_s=60)
    _job("succeeded", enqueued_s=50, started_s=started_s)
    _worker(beat_s=beat_s)
    assert waiting not in _lost()


def test_a_job_of_an_empty_queue_is_lost_only_once_the_workers_listed_what_they_hold(clean):
    # Given a waiting job whose queue is empty, and a worker that stopped beating a moment ago
    amqp.declare("orders")
    waiting = _job("enqueued", enqueued_s=60)
    _worker(beat_s=2)

    # Then it is not called lost: the worker may have taken it after its last list
    assert waiting not in _lost()
