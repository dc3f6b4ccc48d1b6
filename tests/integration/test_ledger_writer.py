"""The ledger writer against the real database: merging, ordering, and a refused row."""

from __future__ import annotations

import os
import sys
import threading
import uuid

import broker  # noqa: F401  (configures jobcore.db, as every entry point does)
from jobcore.ledger.writer import Change, LedgerWriter, connect_psycopg, now
from tests.support.ledger import entry
from tests.support.waiting import wait_until


def _writer(flush_ms: int = 20) -> LedgerWriter:
    dsn = os.environ["SHOPJOBS_DATABASE_URL"].replace("+psycopg2", "")
    return LedgerWriter(connect_psycopg(dsn), flush_ms=flush_ms)


def test_a_late_enqueued_event_never_overrides_a_later_state(clean):
    writer = _writer()
    mid = str(uuid.uuid4())
    t = now()
    writer.wait_durable(
        writer.record(Change(mid, "a.b", "q", "succeeded", t + 1, finished_at=t + 1), urgent=True)
    )
    writer.wait_durable(
        writer.record(
            Change(mid, "a.b", "q", "enqueued", t, enqueued_at=t, args='{"x": 1}'), urgent=True
        )
    )
    row = entry(mid)
    assert row.state == "succeeded" and row.args == {"x": 1} and row.enqueued_at is not None
    writer.close()


def test_a_duplicate_delivery_is_counted_without_hiding_the_outcome(clean):
    writer = _writer()
    mid = str(uuid.uuid4())
    t = now()
    writer.record(Change(mid, "a.b", "q", "running", t, started_at=t, attempts=1))
    writer.wait_durable(
        writer.record(
            Change(mid, "a.b", "q", "succeeded", t + 0.1, finished_at=t + 0.1), urgent=True
        )
    )
    writer.wait_durable(
        writer.record(Change(mid, "a.b", "q", "skipped", t + 5, duplicates=1), urgent=True)
    )
    row = entry(mid)
    assert (row.state, row.attempts, row.duplicates) == ("succeeded", 1, 1)
    writer.close()


def test_a_row_the_database_refuses_does_not_block_the_others(clean):
    # Given a batch where one row breaks a constraint (an unknown state)
    writer = _writer()
    good, bad = str(uuid.uuid4()), str(uuid.uuid4())
    t = now()
    writer.record(Change(bad, "a.b", "q", "exploded", t))
    ticket = writer.record(Change(good, "a.b", "q", "succeeded", t, finished_at=t), urgent=True)

    # When the batch is flushed, the good row is written and the bad one dropped (and counted)
    writer.wait_durable(ticket)
    assert entry(good).state == "succeeded"
    assert entry(bad) is None
    assert writer.dropped == 1 and writer.failures >= 1
    writer.close()


def test_a_job_that_ends_soon_writes_its_start_and_outcome_as_one_row(clean):
    writer = _writer(flush_ms=5000)
    mid, other, t = str(uuid.uuid4()), str(uuid.uuid4()), now()
    writer.start(Change(mid, "a.b", "q", "running", t, started_at=t, attempts=1, args='{"x":1}'))
    # another job's outcome commits while this one runs: the start is not written with it
    writer.wait_durable(
        writer.record(Change(other, "a.b", "q", "succeeded", t, finished_at=t), urgent=True)
    )
    assert entry(other).state == "succeeded" and entry(mid) is None
    writer.wait_durable(
        writer.record(
            Change(mid, "a.b", "q", "succeeded", t + 0.01, finished_at=t + 0.01), urgent=True
        )
    )
    row = entry(mid)
    assert (row.state, row.attempts, row.args) == ("succeeded", 1, {"x": 1})
    assert row.started_at is not None and row.finished_at is not None and row.worker
    assert writer.rows_written == 2  # one upsert per job, not one per state
    writer.close()


def test_a_job_still_running_after_flush_ms_shows_as_running(clean):
    writer = _writer()
    mid, t = str(uuid.uuid4()), now()
    writer.start(Change(mid, "a.b", "q", "running", t, started_at=t, attempts=1))
    assert wait_until(lambda: entry(mid), 5, what="the running row").state == "running"
    writer.wait_durable(
        writer.record(Change(mid, "a.b", "q", "failed", now(), finished_at=now()), urgent=True)
    )
    row = entry(mid)
    assert (row.state, row.attempts) == ("failed", 1)
    writer.close()


def test_flush_writes_a_held_start(clean):
    writer = _writer(flush_ms=60_000)
    mid, t = str(uuid.uuid4()), now()
    writer.start(Change(mid, "a.b", "q", "running", t, started_at=t, attempts=1))
    assert writer.flush(10)
    assert entry(mid).state == "running"
    writer.close()


def test_an_idle_writer_writes_a_lone_enqueued_or_running_change_within_flush_ms(clean):
    # Given a writer whose flusher has written everything and waits (a service between sends)
    writer = _writer()
    t = now()
    warm = str(uuid.uuid4())
    writer.wait_durable(writer.record(Change(warm, "a.b", "q", "succeeded", t), urgent=True))

    # When one non-final change comes, and later one job starts and runs on
    sent, started = str(uuid.uuid4()), str(uuid.uuid4())
    writer.record(Change(sent, "a.b", "q", "enqueued", now(), enqueued_at=now(), args='{"a":1}'))

    # Then each is written on its own, without an urgent change or a flush to carry it
    assert wait_until(lambda: entry(sent), 5, what="the enqueued row").args == {"a": 1}
    writer.start(Change(started, "a.b", "q", "running", now(), started_at=now(), attempts=1))
    assert wait_until(lambda: entry(started), 5, what="the running row").state == "running"
    writer.close()


def test_text_the_fast_encoder_refuses_still_reaches_the_database_or_is_dropped_alone(clean):
    # Given an error text with a lone surrogate (orjson refuses it) beside an ordinary outcome
    writer = _writer()
    odd, good, t = str(uuid.uuid4()), str(uuid.uuid4()), now()
    writer.record(Change(odd, "a.b", "q", "failed", t, error="bad byte \udc80 in a path"))
    ticket = writer.record(Change(good, "a.b", "q", "succeeded", t, finished_at=t), urgent=True)

    # Then the batch is written: the ordinary row lands, the odd one is dropped and counted
    writer.wait_durable(ticket)
    assert entry(good).state == "succeeded"
    assert entry(odd) is None and writer.dropped == 1
    writer.close()


def test_an_urgent_change_after_a_flush_of_nothing_is_written_at_once(clean):
    # Given an idle writer asked to flush with nothing buffered (a consumer closing, a producer
    # exiting): a flush is marked as asked for, and no batch is there to take it
    writer = _writer()
    t = now()
    writer.wait_durable(
        writer.record(Change(str(uuid.uuid4()), "a.b", "q", "succeeded", t), urgent=True)
    )
    assert writer.flush(5)
    wait_until(lambda: _parked(writer), 5, what="the flusher waiting for changes")

    # When a job's final change comes, with its ack deferred until the commit
    committed = threading.Event()
    mid = str(uuid.uuid4())
    ticket = writer.record(Change(mid, "a.b", "q", "succeeded", now()), urgent=True)
    writer.when_durable(ticket, committed.set)

    # Then the flusher is woken for it: the ack is not held until some other change comes
    assert committed.wait(5), "the final change waited for another change to wake the flusher"
    assert entry(mid).state == "succeeded"
    writer.close()


def _parked(writer: LedgerWriter) -> bool:
    """Whether the writer's flusher thread waits in ``_take_batch`` for something to write, and
    has not been notified yet (a waiter of the condition: a notify takes it off the list)."""
    if not writer._cv._waiters:  # type: ignore[attr-defined]
        return False
    thread = writer._thread
    frame = sys._current_frames().get(thread.ident) if thread is not None else None
    names = set()
    while frame is not None:
        names.add(frame.f_code.co_name)
        frame = frame.f_back
    return {"_take_batch", "wait"} <= names
