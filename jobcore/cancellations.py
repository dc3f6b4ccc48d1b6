"""Cancelling jobs that have not started: by message id, or every pending job of an order.

A cancel marks the ledger row ``cancelled`` (only from ``scheduled``, ``enqueued`` or
``retrying``), deletes
its outbox row if it is still there (a long delay held in PostgreSQL is never published), and
announces the id on a PostgreSQL channel in the same transaction. Each worker process keeps the
set of cancelled ids in memory (``CancellationWatch``: loaded at boot, then fed by LISTEN), so
checking an arriving message costs a set lookup, not a query. A job already running cannot be
cancelled; the result says so. A message that starts within the few milliseconds the
notification takes to arrive still runs, and its ledger row then shows the run's outcome.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import select
import threading
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from jobcore.errors import InvalidInput
from jobcore.ledger.states import State
from jobcore.models import AuditLog

CHANNEL = "shopjobs_cancellations"
CANCELLABLE = (State.SCHEDULED, State.ENQUEUED, State.RETRYING)
REMEMBER_DAYS = 14
THREAD_NAME = "cancellation-watch"
logger = logging.getLogger("shopjobs.cancellations")


@dataclasses.dataclass(frozen=True)
class Outcome:
    message_id: str
    actor: str | None
    state: str | None  # the state now; None when the ledger does not know the id
    cancelled: bool

    @property
    def note(self) -> str:
        if self.cancelled:
            return "cancelled: it will be skipped when it arrives"
        if self.state is None:
            return "no such job"
        return f"not cancelled: it is {self.state}"


def cancel(
    session: Session,
    *,
    message_ids: Iterable[str] = (),
    order_id: int | None = None,
    reason: str,
    operator: str,
) -> list[Outcome]:
    """Cancel the named jobs, or every pending job of ``order_id``; one audit row for the request."""
    ids = sorted(set(message_ids))
    if not ids and order_id is None:
        raise InvalidInput("name at least one message id, or an order id")
    if not reason.strip():
        raise InvalidInput("a cancellation needs a reason")
    where = "message_id = ANY(:ids)" if ids else "order_id = :order_id"
    params: dict[str, Any] = {
        "ids": ids,
        "order_id": order_id,
        "states": list(CANCELLABLE),
        "error": f"cancelled by {operator}: {reason}"[:2000],
    }
    # outbox rows first, as the relay locks them (then their ledger rows): the other order
    # would deadlock with a relay publishing one of these jobs right now; this waits for it
    session.execute(
        text(f"""
        SELECT 1 FROM outbox o JOIN job_ledger USING (message_id)
        WHERE {where} AND state = ANY(:states)
        ORDER BY o.id FOR UPDATE OF o"""),
        params,
    ).all()
    cancelled = session.execute(
        text(f"""
        UPDATE job_ledger
        SET state = '{State.CANCELLED}', state_changed_at = now(), finished_at = now(),
            error = :error
        WHERE {where} AND state = ANY(:states)
        RETURNING message_id, actor"""),
        params,
    ).all()
    for message_id, _ in cancelled:
        session.execute(
            text("SELECT pg_notify(:channel, :id)"), {"channel": CHANNEL, "id": message_id}
        )
    if cancelled:
        # a send still held in PostgreSQL (a delay, or not yet relayed) is never published
        session.execute(
            text("DELETE FROM outbox WHERE message_id = ANY(:ids)"),
            {"ids": [m for m, _ in cancelled]},
        )
    done = {m: a for m, a in cancelled}
    others = session.execute(
        text(f"SELECT message_id, actor, state FROM job_ledger WHERE {where}"), params
    ).all()
    outcomes = {m: Outcome(m, a, s, m in done) for m, a, s in others}
    for message_id in ids:
        outcomes.setdefault(message_id, Outcome(message_id, None, None, False))
    session.add(
        AuditLog(
            actor=operator,
            action="jobs.cancel",
            subject=f"order {order_id}" if order_id is not None else f"{len(ids)} jobs",
            details={"reason": reason, "cancelled": sorted(done), "requested": ids or None},
        )
    )
    return sorted(outcomes.values(), key=lambda o: (not o.cancelled, o.message_id))


class CancellationWatch:
    """The cancelled ids a worker process must skip, kept current by LISTEN on ``CHANNEL``.

    Its connection is named ``shopjobs-cancellations[pid]`` in ``pg_stat_activity``. ``stop``
    wakes the listening thread at once (a pipe beside the connection in ``select``), so a
    worker's shutdown does not wait for a poll interval, and the connection is closed before
    ``stop`` returns.

    Parameters:
      connect: opens a psycopg2 connection (autocommit is set here).
      reconnect_s: wait before reconnecting after the connection failed.
    """

    def __init__(self, connect: Callable[[], Any], reconnect_s: float = 2.0) -> None:
        self._connect = connect
        self._reconnect_s = reconnect_s
        self._ids: set[str] = set()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._ids

    def start(self, ready_within_s: float = 10.0) -> None:
        """Start listening; returns once the current set is loaded (or the wait ran out)."""
        self._thread.start()
        if not self._ready.wait(ready_within_s):
            logger.warning("cancelled jobs not loaded within %.0f s; still trying", ready_within_s)

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Stop listening and close the connection; False if the thread outlived ``timeout_s``."""
        if self._wake_w < 0:
            return True  # stopped already
        self._stop.set()
        os.write(self._wake_w, b"x")
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        if self._thread.is_alive():
            # stuck in connect() (its own timeout ends it); the daemon thread dies with the process
            logger.warning("cancellation watch did not stop within %.0f s", timeout_s)
            return False
        os.close(self._wake_r)
        os.close(self._wake_w)
        self._wake_r = self._wake_w = -1
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception:
                logger.warning(
                    "cancellation watch lost its connection; reconnecting", exc_info=True
                )
                self._stop.wait(self._reconnect_s)

    def _listen(self) -> None:
        conn = self._connect()
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                name = f"shopjobs-cancellations[{os.getpid()}]"
                cur.execute("SET application_name = %s", (name,))
                cur.execute(f"LISTEN {CHANNEL}")
                # loaded after LISTEN, so no cancellation falls between the two
                cur.execute(
                    f"SELECT message_id FROM job_ledger WHERE state = '{State.CANCELLED}' "
                    "AND state_changed_at > now() - make_interval(days => %s)",
                    (REMEMBER_DAYS,),
                )
                self._ids.update(row[0] for row in cur.fetchall())
            self._ready.set()
            while not self._stop.is_set():
                if conn in select.select([conn, self._wake_r], [], [], 5.0)[0]:
                    conn.poll()
                    while conn.notifies:
                        self._ids.add(conn.notifies.pop(0).payload)
        finally:
            conn.close()
