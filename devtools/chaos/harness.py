"""What a chaos scenario runs on, and what it reports.

``Harness`` starts worker groups (the supervisor, with the chaos actors loaded and a metrics
endpoint), knows the payment stand-in (whose ledger is the truth about money) and waits for
progress; ``Outcome`` is one row of the soak table and what a chaos test asserts on.
"""

from __future__ import annotations

import dataclasses
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from devtools.chaos import audit as audit_mod
from devtools.chaos.audit import TERMINAL_ORDERS, Audit
from devtools.chaos.load import Load
from devtools.ports import free_port, wait_listening
from devtools.processes import Worker
from jobcore.db import session_scope
from jobcore.models import LedgerEntry
from shop.models import Order

WORKER_MODULES = ("actors", "devtools.chaos.actors")
T = TypeVar("T")
_pause = threading.Event()


@dataclasses.dataclass
class Outcome:
    """One catalogue row's run: what was injected, what the system showed, what the audit found."""

    row: str
    scenario: str
    orders: int
    faults: int
    evidence: dict[str, Any]
    audit: Audit
    drain_s: float | None
    error: str | None = None

    @property
    def lost(self) -> int:
        return len(self.audit.lost)

    @property
    def stranded(self) -> int:
        return len(self.audit.stranded)

    def problems(self) -> list[str]:
        return ([self.error] if self.error else []) + self.audit.problems()


class Harness:
    """Parameters:
    payments: the payment stand-in (``.ledger()`` lists every charge and refund).
    log_dir: where worker logs go.
    processes, threads: the worker group's size.
    drain_timeout_s: the longest a run may take to drain after its last fault.
    smtp: the SMTP stand-in (what was delivered), when the workers send e-mail to it.
    """

    def __init__(
        self,
        payments: Any,
        log_dir: str,
        processes: int = 2,
        threads: int = 4,
        drain_timeout_s: float = 120.0,
        smtp: Any = None,
    ) -> None:
        self.payments = payments
        self.smtp = smtp
        self.log_dir = log_dir
        self.processes = processes
        self.threads = threads
        self.drain_timeout_s = drain_timeout_s
        self.rng = random.Random(11)
        self.metrics_port: int | None = None
        self._started: list[Worker] = []

    def workers(
        self,
        name: str,
        env: dict[str, str] | None = None,
        modules: tuple[str, ...] = (),
        **kwargs: Any,
    ) -> Worker:
        """A supervised group with a metrics endpoint, ready."""
        self.metrics_port = free_port()
        worker = Worker(
            WORKER_MODULES + modules,
            processes=self.processes,
            threads=self.threads,
            env={"SHOPJOBS_METRICS_PORT": str(self.metrics_port), **(env or {})},
            log_path=os.path.join(self.log_dir, f"{name}-workers.log"),
            **kwargs,
        )
        self._started.append(worker)
        worker.wait_ready(90)
        # its metrics fork starts after every worker booted and imports the shop first: a short
        # scenario under load can drain before it listens, and the audit scrapes it
        wait_listening(self.metrics_port, 90, worker.alive, "the group's metrics fork")
        return worker

    def close(self) -> None:
        """Stop every group this harness started that still runs (a scenario that raised left
        it): a group left running would take the next scenario's messages."""
        while self._started:
            worker = self._started.pop()
            if worker.alive():
                worker.stop()

    def finish(
        self,
        row: str,
        scenario: str,
        load: Load,
        faults: int,
        evidence: dict[str, Any],
        last_fault: float,
        worker: Worker | None = None,
        relay: bool = True,
        while_draining: Callable[[], None] | None = None,
    ) -> Outcome:
        """Wait for the drain, audit, stop the group: the run's outcome.

        ``relay`` False: nothing but the system relays the outbox (the relay's own row).
        ``while_draining``: called on each poll until drained (fires the scenario plays).
        """
        error = None
        drain_s: float | None = None
        try:
            audit_mod.wait_drained(
                load, self.drain_timeout_s, 2.0 if relay else None, while_draining
            )
            drain_s = time.monotonic() - last_fault
        except TimeoutError as exc:
            error = str(exc)
        if worker is not None:
            evidence.setdefault("worker_deaths", worker.deaths())
        evidence.setdefault("redeliveries", redeliveries())
        found = audit_mod.audit(
            load,
            self.payments.ledger(),
            self.metrics_port if worker else None,
            self.smtp,
            worker.log() if worker is not None else "",
        )
        if worker is not None:
            worker.stop()
        return Outcome(row, scenario, len(load.order_ids), faults, evidence, found, drain_s, error)


def terminal_fraction(load: Load) -> float:
    try:
        with session_scope() as s:
            done = s.scalar(
                select(func.count())
                .select_from(Order)
                .where(Order.id.in_(load.order_ids), Order.status.in_(TERMINAL_ORDERS))
            )
    except DBAPIError:
        return 0.0
    return (done or 0) / max(1, len(load.order_ids))


def when(predicate: Callable[[], T], timeout: float = 120, what: str = "") -> T:
    """Poll until ``predicate()`` is truthy and return that value; raise with ``what`` after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        _pause.wait(0.1)
    return value


def at_progress(load: Load, fraction: float, timeout: float | None = None) -> None:
    """Wait until ``fraction`` of the load's orders are terminal; the default deadline grows
    with the load (120 s, or 0.1 s an order: the soak's 10,000 orders needed more than 120 s
    to reach a step of T3 on a busy machine)."""
    if timeout is None:
        timeout = max(120.0, 0.1 * len(load.order_ids))
    when(lambda: terminal_fraction(load) >= fraction, timeout, f"{fraction:.0%} of orders terminal")


def redeliveries() -> int:
    with session_scope() as s:
        return int(s.scalar(select(func.coalesce(func.sum(LedgerEntry.redeliveries), 0))) or 0)


def ledger_count(**where: Any) -> int:
    with session_scope() as s:
        query = select(func.count()).select_from(LedgerEntry)
        for column, value in where.items():
            attr = getattr(LedgerEntry, column)
            query = query.where(
                attr.in_(value) if isinstance(value, list | tuple) else attr == value
            )
        return int(s.scalar(query) or 0)
