"""Every application connection is bounded: statements, lock waits and idle transactions.

The options are set when a connection is made (``jobcore.db`` engine and the psycopg DSN of
the ledger writer, cancellations and probes), so these tests build their own engine from
settings with short timeouts and restore the process's settings afterwards.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator

import psycopg2
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

import broker
from jobcore import db
from jobcore.ledger.writer import Change, LedgerWriter, connect_psycopg, now
from shop.settings import Settings
from tests.support.ledger import entry
from tests.support.waiting import wait_until


@pytest.fixture()
def short(clean) -> Iterator[Settings]:
    settings = dataclasses.replace(
        broker.settings,
        db_statement_timeout_ms=300,
        db_lock_timeout_ms=200,
        db_idle_in_transaction_timeout_ms=500,
    )
    db.configure(settings)
    yield settings
    db.configure(broker.settings)


def test_the_engine_and_the_psycopg_dsn_connect_with_the_documented_defaults(clean):
    expected = [
        ("statement_timeout", "30s"),
        ("lock_timeout", "5s"),
        ("idle_in_transaction_session_timeout", "1min"),
    ]
    with db.session_scope() as s:
        assert [(n, s.scalar(text(f"SHOW {n}"))) for n, _ in expected] == expected
    conn = psycopg2.connect(broker.settings.psycopg_dsn)
    try:
        with conn.cursor() as cur:
            got = []
            for name, _ in expected:
                cur.execute(f"SHOW {name}")
                got.append((name, cur.fetchone()[0]))
    finally:
        conn.close()
    assert got == expected


def test_a_statement_waiting_on_a_lock_fails_after_the_lock_timeout(short):
    # Given another session holding a lock on the orders table
    holder = psycopg2.connect(short.psycopg_dsn)
    try:
        with holder.cursor() as cur:
            cur.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        # When the application touches the table
        started = time.monotonic()
        with pytest.raises(OperationalError, match="lock timeout"), db.session_scope() as s:
            s.execute(text("SELECT count(*) FROM orders"))
        waited = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()
    # Then it gave up after about 200 ms instead of waiting for the holder
    assert waited < 3.0


def test_a_long_statement_is_cancelled_by_the_statement_timeout(short):
    with pytest.raises(OperationalError, match="statement timeout"), db.session_scope() as s:
        s.execute(text("SELECT pg_sleep(5)"))


def _alive(pid: int) -> bool:
    with db.session_scope() as s:
        return bool(
            s.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"), {"p": pid})
        )


def test_a_transaction_left_idle_is_ended_by_the_server(short):
    # Given a connection that opened a transaction and went quiet
    conn = psycopg2.connect(short.psycopg_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        # Then the server ends its session after the 500 ms idle-in-transaction timeout
        wait_until(lambda: not _alive(pid), 10, what="the idle transaction's session ended")
        with pytest.raises(psycopg2.Error), conn.cursor() as cur:
            cur.execute("SELECT 1")
    finally:
        conn.close()


def test_a_ledger_flush_cancelled_by_the_lock_timeout_is_retried_and_loses_no_outcome(short):
    # Given the ledger writer on a connection with a 200 ms lock timeout, and the ledger locked
    writer = LedgerWriter(connect_psycopg(short.psycopg_dsn), flush_ms=20)
    holder = psycopg2.connect(broker.settings.psycopg_dsn)  # its own idle timeout is 60 s
    mid = str(uuid.uuid4())
    try:
        with holder.cursor() as cur:
            cur.execute("LOCK TABLE job_ledger IN EXCLUSIVE MODE")  # blocks writes, not reads
        t = now()
        ticket = writer.record(Change(mid, "a.b", "q", "succeeded", t, finished_at=t), urgent=True)
        # When its flushes fail on the lock for a while (each cancelled after 200 ms)
        wait_until(lambda: writer.failures >= 2, 10, what="two flushes cancelled by lock_timeout")
        assert entry(mid) is None
    finally:
        holder.rollback()  # the lock is released
        holder.close()
    # Then a later flush writes the outcome: nothing was dropped
    writer.wait_durable(ticket)
    assert entry(mid).state == "succeeded" and writer.dropped == 0
    writer.close()
