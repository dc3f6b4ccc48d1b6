"""Which worker processes are alive, and since when: rows in ``worker_processes``.

Each process upserts its row at boot, refreshes ``heartbeat_at`` every ``HEARTBEAT_S`` and
removes it at a clean shutdown. A process killed outright stops beating; readers call a row
whose heartbeat is older than ``STALE_S`` gone. What a process runs right now is in the ledger
(``job_ledger.worker`` = the same ``host:pid`` name, state ``running``); what it holds (messages
delivered to it, not yet acked) is counted per queue with each beat (``held``) and listed by message id (``held_ids``), so a
job whose message waits in a worker's prefetch is not taken for lost (``jobcore.ledger.lost``).
A beat's list is at most ``HEARTBEAT_S`` old while the process lives: a message delivered
before the last beat and not yet settled is in it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

from dramatiq.common import q_name
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from jobcore import db
from jobcore.ledger.states import State
from jobcore.ledger.writer import WORKER_NAME
from jobcore.models import LedgerEntry
from jobcore.models.workers import WorkerProcess

HEARTBEAT_S = 5.0
STALE_S = 20.0
FORGET_AFTER = dt.timedelta(days=1)
logger = logging.getLogger("shopjobs.workers")


class Heartbeat:
    """This process's row: registered on ``start``, refreshed by a daemon thread, removed on ``stop``."""

    def __init__(
        self,
        queues: list[str],
        threads: int,
        held: Callable[[], dict[str, int]] | None = None,
        held_ids: Callable[[], list[str]] | None = None,
    ) -> None:
        self.name = WORKER_NAME.format(pid=os.getpid())
        self.queues = sorted(queues)
        self.threads = threads
        self.held = held
        self.held_ids = held_ids
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="worker-heartbeat", daemon=True)

    def start(self) -> None:
        with db.session_scope() as s:
            s.execute(
                delete(WorkerProcess).where(WorkerProcess.heartbeat_at < func.now() - FORGET_AFTER)
            )
        self._upsert()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        with db.session_scope() as s:
            s.execute(delete(WorkerProcess).where(WorkerProcess.name == self.name))

    def _upsert(self) -> None:
        values = {
            "name": self.name,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queues": self.queues,
            "threads": self.threads,
            "held": self.held() if self.held is not None else {},
            "held_ids": self.held_ids() if self.held_ids is not None else [],
        }
        with db.session_scope() as s:
            s.execute(
                insert(WorkerProcess)
                .values(**values)
                .on_conflict_do_update(
                    index_elements=[WorkerProcess.name], set_={"heartbeat_at": func.now(), **values}
                )
            )

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self._upsert()
            except Exception:
                logger.warning(
                    "worker heartbeat not written; retrying in %.0f s", HEARTBEAT_S, exc_info=True
                )


def held_by(worker: Any) -> dict[str, int]:
    """Messages ``worker``'s consumers hold (delivered, not yet acked), by queue; a delayed
    message (``.DQ``) counts under its queue. Read from Dramatiq's consumer threads without a
    lock: a count a moment old is what a heartbeat reports anyway."""
    held: dict[str, int] = {}
    for name, thread in list(getattr(worker, "consumers", {}).items()):
        tags = getattr(getattr(thread, "consumer", None), "known_tags", None)
        if tags:
            queue = q_name(name)
            held[queue] = held.get(queue, 0) + len(tags)
    return held


def held_ids_by(worker: Any) -> list[str]:
    """Ids of the messages ``worker``'s consumers hold (``.DQ`` ones too), sorted."""
    ids: set[str] = set()
    for thread in list(getattr(worker, "consumers", {}).values()):
        consumer = getattr(thread, "consumer", None)
        read = getattr(consumer, "held_message_ids", None)
        if read is not None:
            ids.update(read())
    return sorted(ids)


@dataclasses.dataclass
class WorkerView:
    name: str
    queues: list[str]
    threads: int
    started_at: dt.datetime
    heartbeat_age_s: float
    alive: bool
    running: int
    running_actors: list[str]
    oldest_running_s: float | None
    held: dict[str, int]  # deliveries taken and not yet acked, by queue, at the last beat


def workers(session: Session, *, include_gone: bool = False) -> list[WorkerView]:
    """Every registered process (live ones only unless ``include_gone``) and what it runs now."""
    now = session.execute(select(func.now())).scalar_one()
    rows = session.scalars(select(WorkerProcess).order_by(WorkerProcess.name)).all()
    running = session.execute(
        select(LedgerEntry.worker, LedgerEntry.actor, LedgerEntry.started_at).where(
            LedgerEntry.state == State.RUNNING, LedgerEntry.worker.in_([r.name for r in rows])
        )
    ).all()
    views = []
    for row in rows:
        age = (now - row.heartbeat_at).total_seconds()
        if age > STALE_S and not include_gone:
            continue
        mine = [(actor, started) for worker, actor, started in running if worker == row.name]
        starts = [started for _, started in mine if started is not None]
        views.append(
            WorkerView(
                name=row.name,
                queues=list(row.queues),
                threads=row.threads,
                started_at=row.started_at,
                heartbeat_age_s=round(age, 1),
                alive=age <= STALE_S,
                running=len(mine),
                running_actors=sorted({actor for actor, _ in mine}),
                oldest_running_s=round((now - min(starts)).total_seconds(), 1) if starts else None,
                held=dict(row.held or {}),
            )
        )
    return views


def held(session: Session) -> dict[str, int]:
    """Messages the live worker processes hold, by queue, at their last beats (a delayed one
    under its queue)."""
    total: dict[str, int] = {}
    for view in workers(session):
        for queue, count in view.held.items():
            total[queue] = total.get(queue, 0) + int(count)
    return total
