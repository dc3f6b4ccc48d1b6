"""The ledger writer: buffers job-state changes per process and writes them in batches.

Why batches: one autocommit UPDATE per state change costs a round trip and a WAL flush per
message, which cuts a worker's throughput to a third. Here every change is merged per message
in memory, and one flusher thread per process writes the batch with a single
``INSERT ... ON CONFLICT`` over ``unnest`` arrays. Non-final changes (enqueued, running) wait
at most ``flush_ms``; a final change asks for an immediate flush and its caller may block on
``wait_durable`` until the row is committed, which is how acks wait for the ledger: group
commit, so many worker threads share one transaction.

A job's 'running' change (``start``) is held back for ``flush_ms``: a job that ends sooner
writes one row, its final state with its start folded in, instead of an upsert for each (most
jobs of a shop take milliseconds); a longer one shows as running ``flush_ms`` after it started,
as any non-final change.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson

from jobcore import groups
from jobcore import sends as job_sends
from jobcore.ledger import precedence
from jobcore.ledger.states import State
from jobcore.libpq import TIMEOUTS

logger = logging.getLogger(__name__)

WORKER_NAME = f"{socket.gethostname()}:{{pid}}"

COLUMNS = (
    "message_id",
    "actor",
    "queue",
    "state",
    "state_ts",
    "args",
    "attempts",
    "enqueued_at",
    "eta",
    "started_at",
    "finished_at",
    "error",
    "traceback",
    "order_id",
    "user_id",
    "job_id",
    "worker",
    "duplicates",
    "result",
)
# Which state wins is decided by jobcore.ledger.precedence, the same rule Change.absorb applies.
_TAKES = precedence.sql_takes("j", "EXCLUDED")
# Rows are upserted in message_id order: every writer (each worker process, each producer) then
# locks the rows it shares with another in the same order, so two batches never deadlock (a
# producer's 'enqueued' and a worker's 'running' for the same messages did, retried after
# PostgreSQL's deadlock_timeout of 1 s: an 850 ms p99 in bench.latency).
# One JSON document per batch: orjson encodes it (a tenth of json.dumps' time: the flusher runs
# in the worker process, beside its jobs), and PostgreSQL parses the rows, which costs the
# worker far less than adapting 19 Python arrays. Times travel as epoch seconds.
_UPSERT = f"""
INSERT INTO job_ledger AS j (message_id, actor, queue, state, state_changed_at, args, attempts,
    enqueued_at, eta, started_at, finished_at, error, traceback, order_id, user_id, job_id, worker,
    duplicates, result)
SELECT v.message_id, v.actor, v.queue, v.state, to_timestamp(v.state_ts), v.args::jsonb,
    COALESCE(v.attempts, 0), to_timestamp(v.enqueued_at), to_timestamp(v.eta),
    to_timestamp(v.started_at), to_timestamp(v.finished_at), v.error, v.traceback, v.order_id,
    v.user_id, v.job_id, v.worker, COALESCE(v.duplicates, 0), v.result::jsonb
FROM json_to_recordset(%s::json) AS v(message_id text, actor text, queue text, state text,
    state_ts float8, args text, attempts int, enqueued_at float8, eta float8, started_at float8,
    finished_at float8, error text, traceback text, order_id bigint, user_id bigint, job_id text,
    worker text, duplicates int, result text)
ORDER BY v.message_id
ON CONFLICT (message_id) DO UPDATE SET
  state = CASE WHEN {_TAKES} THEN EXCLUDED.state ELSE j.state END,
  state_changed_at = CASE WHEN {_TAKES} THEN EXCLUDED.state_changed_at ELSE j.state_changed_at END,
  args = COALESCE(j.args, EXCLUDED.args),
  attempts = j.attempts + EXCLUDED.attempts,
  enqueued_at = LEAST(j.enqueued_at, EXCLUDED.enqueued_at),
  eta = COALESCE(EXCLUDED.eta, j.eta),
  started_at = GREATEST(j.started_at, EXCLUDED.started_at),
  finished_at = GREATEST(j.finished_at, EXCLUDED.finished_at),
  error = COALESCE(EXCLUDED.error, j.error),
  traceback = COALESCE(EXCLUDED.traceback, j.traceback),
  order_id = COALESCE(j.order_id, EXCLUDED.order_id),
  user_id = COALESCE(j.user_id, EXCLUDED.user_id),
  job_id = COALESCE(j.job_id, EXCLUDED.job_id),
  worker = COALESCE(EXCLUDED.worker, j.worker),
  duplicates = j.duplicates + EXCLUDED.duplicates,
  result = COALESCE(EXCLUDED.result, j.result)
"""


@dataclasses.dataclass
class Change:
    """Everything the next flush writes for one message (several events merged)."""

    message_id: str
    actor: str
    queue: str
    state: State
    state_ts: float  # epoch seconds (cheaper than datetime on the hot path)
    args: str | None = None  # JSON text
    attempts: int = 0
    enqueued_at: float | None = None
    eta: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    traceback: str | None = None
    order_id: int | None = None
    user_id: int | None = None
    job_id: str | None = None
    worker: str | None = None
    duplicates: int = 0
    result: str | None = None  # JSON text: the job's return value, redacted and capped
    # the messages the job sent: committed with this change (jobcore.sends), then relayed
    sends: list[job_sends.Send] | None = None
    group_id: str | None = None  # the group it is a child of: its final state counts there

    def absorb(self, newer: Change) -> None:
        """Fold a later change for the same message into this one, as the upsert would.

        Field by field, not by name in a loop: it runs once or twice per job (a getattr and a
        setattr per field by name cost about four times as much)."""
        _absorb_sends(self, newer)
        if precedence.takes(self.state, self.state_ts, newer.state, newer.state_ts):
            self.state, self.state_ts = newer.state, newer.state_ts
        self.attempts += newer.attempts
        self.duplicates += newer.duplicates
        # kept from the first change that has them
        if self.args is None:
            self.args = newer.args
        if self.order_id is None:
            self.order_id = newer.order_id
        if self.user_id is None:
            self.user_id = newer.user_id
        if self.job_id is None:
            self.job_id = newer.job_id
        if self.group_id is None:
            self.group_id = newer.group_id
        # the latest that has them
        if newer.eta is not None:
            self.eta = newer.eta
        if newer.error is not None:
            self.error = newer.error
        if newer.traceback is not None:
            self.traceback = newer.traceback
        if newer.worker is not None:
            self.worker = newer.worker
        if newer.result is not None:
            self.result = newer.result
        # the earliest enqueue, the latest start and finish
        if newer.enqueued_at is not None:
            self.enqueued_at = min(filter(None, (self.enqueued_at, newer.enqueued_at)))
        if newer.started_at is not None and (
            self.started_at is None or newer.started_at > self.started_at
        ):
            self.started_at = newer.started_at
        if newer.finished_at is not None and (
            self.finished_at is None or newer.finished_at > self.finished_at
        ):
            self.finished_at = newer.finished_at


class LedgerWriter:
    """Buffered, batched, crash-honest ledger writes for one process.

    Parameters:
      connect: opens a DB-API connection (psycopg2) for the flusher thread.
      flush_ms: the longest a non-final change waits before it is written.
      gather_ms: how long a flush asked for by a final state waits for more rows to join it.
      max_batch: the most messages written in one transaction.
    """

    def __init__(
        self,
        connect: Callable[[], Any],
        *,
        flush_ms: int = 50,
        gather_ms: int = 2,
        max_batch: int = 500,
    ) -> None:
        self._connect = connect
        self._interval = flush_ms / 1000
        self._gather = gather_ms / 1000
        self._max_batch = max_batch
        self._cv = threading.Condition()
        self._pending: dict[str, Change] = {}
        self._started: dict[str, Change] = {}  # 'running' changes held back, oldest first
        self._seq = 0
        self._durable_seq = 0
        self._settled_seq = 0  # committed and its callbacks (deferred acks) run
        self._urgent = False
        self._pid: int | None = None
        self._worker_name = ""  # WORKER_NAME of _pid, set with it
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.flushes = 0
        self.rows_written = 0
        self.failures = 0
        self.dropped = 0
        self._callbacks: list[tuple[int, Callable[[], None], Callable[[], None] | None]] = []
        # called (in the flusher thread) after a commit that stored job sends: wakes the relay
        self.sends_committed: Callable[[], None] | None = None

    # -- producers -------------------------------------------------------------------------
    def start(self, change: Change) -> None:
        """Hold a job's 'running' change: the job's next change takes it along, or the flusher
        writes it on its own once it is ``flush_ms`` old (the job still runs)."""
        with self._cv:
            self._ensure_thread()
            if change.worker is None:
                change.worker = self._worker_name
            held = self._started.pop(change.message_id, None)
            if held is not None:  # a second start of one message in this process: keep both
                held.absorb(change)
                change = held
            self._started[change.message_id] = change
            if len(self._started) == 1 and not self._pending:
                self._cv.notify_all()  # an idle flusher waits untimed: it must age this one

    def record(self, change: Change, *, urgent: bool = False) -> int:
        """Buffer a change; returns a ticket for ``wait_durable``."""
        with self._cv:
            self._ensure_thread()
            if change.worker is None:
                change.worker = self._worker_name
            started = self._started.pop(change.message_id, None) if self._started else None
            if started is not None:
                started.absorb(change)
                change = started
            first = self._fold(change) and len(self._pending) == 1
            self._seq += 1
            # Wake the flusher only when it waits for this: the first change into an empty
            # buffer (it waits untimed then; a process that only sends, a service, wrote its
            # 'enqueued' rows at exit before this), the first urgent one since it took a batch,
            # or a full batch. Waking it for every job's final change cost a thread switch each.
            full = len(self._pending) >= self._max_batch
            wake = first
            if urgent or full:
                wake = wake or full or not self._urgent
                self._urgent = True
            if wake:
                self._cv.notify_all()
            return self._seq

    def _request_flush(self) -> None:
        """Ask the flusher for a batch now (caller holds the lock). Once asked, it stays asked
        until the flusher takes the batch, so later final changes need not wake it again."""
        self._urgent = True
        self._cv.notify_all()

    def wait_durable(self, ticket: int, warn_every: float = 10.0) -> None:
        """Block until the change behind ``ticket`` is committed; never gives up on its own."""
        started = time.monotonic()
        with self._cv:
            self._request_flush()
            while not self._cv.wait_for(lambda: self._durable_seq >= ticket, timeout=warn_every):
                logger.warning(
                    "ledger not writable for %.0fs; holding the ack", time.monotonic() - started
                )

    def when_durable(
        self,
        ticket: int,
        callback: Callable[[], None],
        *,
        then: Callable[[], None] | None = None,
    ) -> None:
        """Run ``callback`` (in the flusher thread) once ``ticket`` is committed; at once if it is.

        ``then`` runs once after all the callbacks of one commit that name it, in the same
        thread: callbacks that only collect (the acks of one channel) act on what they collected
        together, one ``basic_ack(multiple=True)`` for a whole commit.
        """
        with self._cv:
            if self._durable_seq < ticket:
                self._callbacks.append((ticket, callback, then))
                if not self._urgent:
                    self._request_flush()
                return
        _call(callback)
        if then is not None:
            _call(then)

    def _run_callbacks(self) -> None:
        with self._cv:
            durable = self._durable_seq
            ready = [(cb, then) for t, cb, then in self._callbacks if t <= durable]
            if not ready:
                return
            self._callbacks = [item for item in self._callbacks if item[0] > durable]
        thens: dict[Callable[[], None], None] = {}
        for callback, then in ready:
            _call(callback)
            if then is not None:
                thens[then] = None
        for then in thens:
            _call(then)

    def flush(self, timeout: float = 30.0) -> bool:
        """Write everything buffered so far and run its deferred acks (producers call it before
        exit; a consumer before it closes its connection)."""
        with self._cv:
            if self._thread is None or self._pid != _pid:
                return not self._pending
            if self._promote_started(everything=True):
                self._seq += 1  # held starts are buffered too: the ticket covers them
            ticket = self._seq
            self._request_flush()
            return self._cv.wait_for(lambda: self._settled_seq >= ticket, timeout=timeout)

    def close(self, timeout: float = 30.0) -> None:
        self.flush(timeout)
        with self._cv:
            self._stopping = True
            self._cv.notify_all()

    # -- the flusher -----------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        pid = _pid
        if self._pid == pid and self._thread is not None:
            return
        # a forked child inherits the parent's buffer but not its thread: start afresh
        self._pid = pid
        self._worker_name = WORKER_NAME.format(pid=pid)
        self._pending = {}
        self._started = {}
        self._callbacks = []
        self._seq = self._durable_seq = self._settled_seq = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="ledger-flusher", daemon=True)
        self._thread.start()

    def _promote_started(self, *, everything: bool = False) -> int:
        """Move held 'running' changes ``flush_ms`` old (or all) to the batch; under the lock."""
        if not self._started:
            return 0
        cutoff = time.time() - self._interval
        aged = []
        for message_id, change in self._started.items():
            if not everything and change.state_ts > cutoff:
                break  # held in start order: the rest are younger
            aged.append(message_id)
        for message_id in aged:
            self._fold(self._started.pop(message_id))
        return len(aged)

    def _fold(self, change: Change) -> bool:
        """Add ``change`` to the next batch, merged with the message's change there; True when
        it is the message's first (under the lock)."""
        current = self._pending.get(change.message_id)
        if current is None:
            self._pending[change.message_id] = change
            return True
        current.absorb(change)
        return False

    def _take_batch(self) -> tuple[list[Change], int] | None:
        with self._cv:
            while not self._pending:
                if self._stopping:
                    return None
                # held starts age into the batch: look again when the oldest is due
                self._cv.wait(timeout=self._interval if self._started else None)
                self._promote_started()
            if not self._urgent and not self._callbacks:
                self._cv.wait_for(lambda: self._urgent or self._stopping, timeout=self._interval)
            self._promote_started()
            if self._gather and not self._stopping:
                # let more final states join this transaction: fewer, larger commits
                self._cv.wait_for(
                    lambda: len(self._pending) >= self._max_batch or self._stopping,
                    timeout=self._gather,
                )
            self._urgent = False
            if len(self._pending) <= self._max_batch:
                batch, self._pending = list(self._pending.values()), {}
                return batch, self._seq
            # more than a batch: write the oldest part now; the rest keeps its place
            keys = list(self._pending)[: self._max_batch]
            batch = [self._pending.pop(k) for k in keys]
            self._urgent = True
            return batch, self._durable_seq

    def _run(self) -> None:
        conn = None
        backoff = 0.1
        while True:
            taken = self._take_batch()
            if taken is None:
                break
            batch, seq = taken
            try:
                if conn is None:
                    conn = self._connect()
                self._write(conn, batch)
            except Exception as exc:
                self.failures += 1
                if _is_data_error(exc) and conn is not None:
                    # a row the database refuses would block every later ack: isolate it
                    conn.rollback()
                    self._write_one_by_one(conn, batch)
                else:
                    logger.warning(
                        "ledger flush of %d rows failed; retrying", len(batch), exc_info=True
                    )
                    try:
                        if conn is not None:
                            conn.close()
                    except Exception:
                        logger.debug(
                            "closing the failed ledger connection failed too", exc_info=True
                        )
                    conn = None
                    self._requeue(batch)
                    with self._cv:
                        self._cv.wait(timeout=backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
            backoff = 0.1
            _notify_sends(self, batch)
            self.flushes += 1
            self.rows_written += len(batch)
            with self._cv:
                self._durable_seq = max(self._durable_seq, seq)
                self._cv.notify_all()
            self._run_callbacks()
            with self._cv:
                self._settled_seq = max(self._settled_seq, seq)
                self._cv.notify_all()
        if conn is not None:
            conn.close()

    def _write_one_by_one(self, conn: Any, batch: list[Change]) -> None:
        for change in batch:
            try:
                self._write(conn, [change])
            except Exception as exc:
                conn.rollback()
                if not _is_data_error(exc):
                    raise
                self.dropped += 1
                logger.critical(
                    "ledger row for message %r refused by the database and dropped: %s",
                    change.message_id,
                    exc,
                )

    def _requeue(self, batch: list[Change]) -> None:
        with self._cv:
            for change in batch:
                newer = self._pending.get(change.message_id)
                if newer is not None:
                    change.absorb(newer)
                self._pending[change.message_id] = change

    @staticmethod
    def _write(conn: Any, batch: list[Change]) -> None:
        rows = []
        for change in batch:
            row = change.__dict__
            rows.append({k: row[k] for k in COLUMNS if row[k] is not None})
        with conn.cursor() as cur:
            cur.execute(_UPSERT, (_document(rows),))
            _write_sends(cur, batch)
            _settle_groups(cur, batch)
        conn.commit()


def _document(rows: list[dict[str, Any]]) -> str:
    try:
        return orjson.dumps(rows).decode()
    except TypeError:  # text orjson refuses (a lone surrogate in an error): as before, stdlib
        return json.dumps(rows, separators=(",", ":"))


def _call(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:
        logger.warning("deferred ack failed; the message will be redelivered", exc_info=True)


# This process's pid, kept by a fork hook: record() runs per message, and os.getpid() is a
# system call each time (a child must start its own flusher, see _ensure_thread).
_pid = os.getpid()


def _refresh_pid() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_refresh_pid)


def _absorb_sends(change: Change, newer: Change) -> None:
    if newer.sends:
        change.sends = (change.sends or []) + newer.sends


def _write_sends(cursor: Any, batch: list[Change]) -> None:
    """The jobs' sends, in the transaction of their final states (after them: a retry's ETA)."""
    sends = [send for change in batch if change.sends for send in change.sends]
    job_sends.write(cursor, sends)


def _settle_groups(cursor: Any, batch: list[Change]) -> None:
    """Count group children's final states in this transaction; a group that settles now gets
    its callbacks' sends written here too (jobcore.groups)."""
    finals = [(c.group_id, c.message_id, c.state) for c in batch if c.group_id]
    if finals:
        job_sends.write(cursor, groups.settle(cursor, finals))


def _notify_sends(writer: LedgerWriter, batch: list[Change]) -> None:
    wake = any(change.sends or change.group_id for change in batch)
    if writer.sends_committed is not None and wake:
        try:
            writer.sends_committed()
        except Exception:
            logger.warning("could not wake the outbox relay; it polls anyway", exc_info=True)


def _is_data_error(exc: BaseException) -> bool:
    """True for errors in the rows themselves (retrying the same rows cannot help). A broken
    statement (ProgrammingError) is not one: it is retried, holding acks, rather than dropping
    every outcome."""
    import psycopg2

    return isinstance(exc, psycopg2.DataError | psycopg2.IntegrityError)


def connect_psycopg(dsn: str) -> Callable[[], Any]:
    """A connect function for ``LedgerWriter``: a dedicated connection, named for pg_stat_activity."""

    def connect() -> Any:
        import psycopg2

        conn = psycopg2.connect(dsn, **TIMEOUTS, application_name=f"shopjobs-ledger[{os.getpid()}]")
        return conn

    return connect


def now() -> float:
    """Epoch seconds, the ledger's unit of time on the hot path."""
    return time.time()
