"""The main job's wait for its jobs: a progress line that survives outages, and why it gave up.

The poll reads the ledger; while PostgreSQL restarts it says so and keeps polling instead of
dying (the workers ride out the restart, so must the main job). It gives up, with the reason,
when the worker group exited, when the ledger's counts stop changing for ``stall_s`` (work
stopped moving: a retry or a state change counts as movement), or at the overall deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

from devtools.processes import Worker
from devtools.workload import summary

T = TypeVar("T")
_pause = threading.Event()


class Stopped(RuntimeError):
    """The main job cannot finish: the message says why."""


def retrying(fn: Callable[[], T], what: str, deadline_s: float = 180) -> T:
    """``fn()``, retried while the database is unreachable (a restart), up to ``deadline_s``."""
    deadline = time.monotonic() + deadline_s
    said = False
    while True:
        try:
            return fn()
        except DBAPIError as exc:
            if not exc.connection_invalidated and not _is_outage(exc):
                raise
            if time.monotonic() > deadline:
                raise Stopped(
                    f"the database stayed unreachable for {deadline_s:.0f}s ({what})"
                ) from exc
            if not said:
                print(
                    f"   database unreachable while reading {what}; retrying "
                    f"({str(exc.orig).strip().splitlines()[0]})",
                    flush=True,
                )
                said = True
            _pause.wait(1.0)


def _is_outage(exc: DBAPIError) -> bool:
    from psycopg2 import InterfaceError, OperationalError

    return isinstance(exc.orig, OperationalError | InterfaceError)


class Progress:
    """Parameters:
    worker: the supervised worker group (its exit stops the wait).
    started: monotonic time the main job started (for the elapsed column).
    overall_deadline_s: from ``started``, the longest the whole run may take.
    stall_s: the longest the ledger's counts may stay unchanged.
    on_poll: called with each snapshot (fault injection hooks in here).
    """

    def __init__(
        self,
        worker: Worker,
        started: float,
        overall_deadline_s: float,
        stall_s: float,
        on_poll: Callable[[summary.Snapshot], None] | None = None,
    ) -> None:
        self.worker = worker
        self.started = started
        self.overall_deadline = started + overall_deadline_s
        self.stall_s = stall_s
        self.on_poll = on_poll
        self.outages = 0

    def wait(self, ids: list[str], phase_deadline_s: float) -> summary.Snapshot:
        """Poll until every sent job finished; the last snapshot (the caller counts what is lost)."""
        deadline = time.monotonic() + phase_deadline_s
        last_print, last_change = 0.0, time.monotonic()
        snap: summary.Snapshot | None = None
        down_since: float | None = None
        while True:
            now = time.monotonic()
            try:
                fresh = summary.snapshot(ids)
            except DBAPIError as exc:
                if not _is_outage(exc):
                    raise
                if down_since is None:
                    down_since = now
                    self.outages += 1
                    first = str(exc.orig).strip().splitlines()[0] if exc.orig else exc
                    print(
                        f"[{now - self.started:6.1f}s] database unreachable ({first}); polling on",
                        flush=True,
                    )
                fresh = None
            else:
                if down_since is not None:
                    print(
                        f"[{now - self.started:6.1f}s] database back after {now - down_since:.1f}s",
                        flush=True,
                    )
                    down_since = None
            if fresh is not None:
                if snap is None or (fresh.states, fresh.missing) != (snap.states, snap.missing):
                    last_change = now
                snap = fresh
                if self.on_poll is not None:
                    self.on_poll(snap)
            done = snap is not None and snap.finished == snap.total
            if snap is not None and (done or now - last_print >= 1.0 or now > deadline):
                print(summary.progress_line(snap, now - self.started), flush=True)
                last_print = now
            if done or (snap is not None and now > deadline):
                return snap  # type: ignore[return-value]
            self._check(snap, now, last_change)
            _pause.wait(0.2)

    def _check(self, snap: summary.Snapshot | None, now: float, last_change: float) -> None:
        where = f"{snap.finished}/{snap.total} finished" if snap is not None else "no progress read"
        if not self.worker.alive():
            raise Stopped(
                f"the worker group exited with code {self.worker.proc.returncode} ({where})"
            )
        if now - last_change > self.stall_s:
            raise Stopped(
                f"work stopped moving: {where}, the ledger unchanged for {self.stall_s:.0f}s"
            )
        if now > self.overall_deadline:
            raise Stopped(f"the overall deadline passed ({where})")
