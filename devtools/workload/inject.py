"""``--fault``: the main job breaks something once, mid-run, as an operator would by hand.

``kill-worker`` SIGKILLs one worker process (the supervisor must replace it while the other
keeps working); ``restart-postgres`` / ``crash-postgres`` restart the machine's PostgreSQL
(``-m fast`` / ``-m immediate``); ``restart-rabbitmq`` stops RabbitMQ for 10 s. The fault fires
once the first phase is ``at`` (a fraction) done, in a thread, so the progress line keeps
showing what the outage does; what it did is printed, and checked at the end.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

from sqlalchemy import func, select

from devtools import faults
from devtools.processes import Worker
from devtools.workload import summary
from jobcore.db import session_scope
from jobcore.ledger.writer import WORKER_NAME
from jobcore.models import LedgerEntry

FAULTS = ("kill-worker", "restart-postgres", "crash-postgres", "restart-rabbitmq")


class Injection:
    """Parameters:
    name: one of ``FAULTS``.
    at: fraction of the phase's jobs finished when the fault fires.
    """

    def __init__(self, name: str, at: float, worker: Worker) -> None:
        self.name = name
        self.at = at
        self.worker = worker
        self.armed = False
        self.thread: threading.Thread | None = None
        self.lines: list[str] = []
        self.failed: str | None = None

    def arm(self) -> None:
        self.armed = True

    def on_poll(self, snap: summary.Snapshot) -> None:
        if (
            self.armed
            and self.thread is None
            and snap.total
            and snap.finished >= self.at * snap.total
        ):
            self.thread = threading.Thread(target=self._run, name="fault", daemon=True)
            self.thread.start()

    def join(self, timeout: float = 300) -> None:
        if self.thread is not None:
            self.thread.join(timeout)

    def _say(self, line: str) -> None:
        self.lines.append(line)
        print(f"== fault: {line}", flush=True)

    def _run(self) -> None:
        try:
            if self.name == "kill-worker":
                self._kill_worker()
            elif self.name in ("restart-postgres", "crash-postgres"):
                mode = "fast" if self.name == "restart-postgres" else "immediate"
                away = faults.restart_postgres(mode)
                self._say(
                    f"PostgreSQL restarted (-m {mode}); it refused connections for {away:.1f}s"
                )
            elif self.name == "restart-rabbitmq":
                away = faults.rabbitmq_outage(10)
                self._say(f"RabbitMQ stopped and started again; it was away {away:.1f}s")
        except Exception as exc:  # noqa: BLE001  (reported at the end; the run decides the verdict)
            self.failed = f"{self.name} could not be injected: {exc}"
            self._say(self.failed)

    def _kill_worker(self) -> None:
        slots = self.worker.worker_pids()
        victim_slot = min(slots)
        victim = slots[victim_slot]
        others = [pid for slot, pid in slots.items() if slot != victim_slot]
        killed_at = dt.datetime.now(dt.UTC)
        clock = time.monotonic()
        self.worker.kill_worker_process(victim_slot)
        self._say(f"SIGKILL to worker process {victim_slot} (pid {victim})")
        replacement = self.worker.wait_replaced(victim)
        ready_after = time.monotonic() - clock
        done = _finished_by(others, killed_at, dt.datetime.now(dt.UTC))
        self._say(
            f"the supervisor replaced it by pid {replacement}, ready {ready_after:.1f}s after the "
            f"kill; meanwhile the other process (pid {', '.join(map(str, others))}) finished "
            f"{done} jobs"
        )
        if not done:
            self.failed = "the other worker process finished nothing while its sibling was replaced"


def _finished_by(pids: list[int], since: dt.datetime, until: dt.datetime) -> int:
    names = [WORKER_NAME.format(pid=pid) for pid in pids]
    with session_scope() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(LedgerEntry)
                .where(LedgerEntry.worker.in_(names), LedgerEntry.finished_at.between(since, until))
            )
            or 0
        )
