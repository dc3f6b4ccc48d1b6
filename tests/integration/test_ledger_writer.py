"""The ledger writer against the real database: merging, ordering, and a refused row."""

from __future__ import annotations

import os
import uuid

from jobcore.ledger.writer import Change, LedgerWriter, connect_psycopg, now
from tests.support.ledger import entry


def _writer() -> LedgerWriter:
    dsn = os.environ["SHOPJOBS_DATABASE_URL"].replace("+psycopg2", "")
    return LedgerWriter(connect_psycopg(dsn), flush_ms=20)


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
