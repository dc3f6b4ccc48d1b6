"""The invariant audit of the fault catalogue, run once the system has drained.

Every order terminal (0 stranded); one provider charge per paid order and one refund per
cancelled paid order (0 duplicate effects); stock conserved and never negative; every ledger
row terminal and every message the run sent recorded (0 lost); the outbox empty; the metrics'
job counts equal to the ledger's. ``wait_drained`` polls for it with a deadline and rides
out a database that is still coming back.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import String, and_, func, or_, select

from devtools.chaos.load import Load
from jobcore import outbox
from jobcore.db import session_scope
from jobcore.models import LedgerEntry, OutboxMessage
from shop.models import Inventory, InventoryReservation, Order

TERMINAL_ORDERS = ("completed", "shipped", "delivered", "cancelled")
OPEN_LEDGER = ("scheduled", "enqueued", "running", "retrying")
_pause = threading.Event()
logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Audit:
    orders: int
    stranded: list[int]
    lost: list[str]
    open_ledger: int
    outbox_left: int
    duplicate_charges: int
    duplicate_refunds: int
    wrong_money: list[str]
    stock_errors: list[str]
    metrics: dict[str, tuple[int, int]]  # outcome -> (metrics, ledger)
    statuses: Counter[str]
    emails: dict[str, int] = dataclasses.field(default_factory=dict)
    pii_leaks: list[str] = dataclasses.field(default_factory=list)  # T20: where a canary showed

    @property
    def duplicate_effects(self) -> int:
        return self.duplicate_charges + self.duplicate_refunds

    @property
    def email_duplicates(self) -> int:
        """E-mails received again with the same Message-ID (the documented resend windows)."""
        return self.emails.get("received", 0) - self.emails.get("distinct", 0)

    @property
    def metrics_match(self) -> bool:
        return all(m == ledger for m, ledger in self.metrics.values())

    def problems(self) -> list[str]:
        """What broke an invariant, one line each (empty: the run survived)."""
        found = []
        if self.stranded:
            found.append(
                f"{len(self.stranded)} orders stranded (not terminal): {self.stranded[:10]}"
            )
        if self.lost:
            found.append(
                f"{len(self.lost)} sent messages without a terminal ledger row: {self.lost[:5]}"
            )
        if self.open_ledger:
            found.append(f"{self.open_ledger} ledger rows left enqueued/running/retrying")
        if self.outbox_left:
            found.append(f"{self.outbox_left} outbox rows left")
        if self.duplicate_effects:
            found.append(
                f"duplicate effects: {self.duplicate_charges} charges, {self.duplicate_refunds} refunds"
            )
        found += self.wrong_money + self.stock_errors
        if self.pii_leaks:
            found.append(f"customers' e-mail or phone found in: {', '.join(self.pii_leaks)}")
        if not self.metrics_match:
            found.append(f"metrics differ from the ledger (metrics, ledger): {self.metrics}")
        return found


def _statuses(order_ids: list[int]) -> Counter[str]:
    with session_scope() as s:
        return Counter(
            dict(
                s.execute(
                    select(Order.status, func.count())
                    .where(Order.id.in_(order_ids))
                    .group_by(Order.status)
                ).all()
            )
        )


def _open_ledger_rows() -> int:
    with session_scope() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(LedgerEntry)
                .where(
                    LedgerEntry.state.in_(OPEN_LEDGER),
                    or_(LedgerEntry.eta.is_(None), LedgerEntry.eta <= func.now()),
                )
            )
            or 0
        )


def _outbox_rows() -> int:
    with session_scope() as s:
        return int(s.scalar(select(func.count()).select_from(OutboxMessage)) or 0)


def drained(load: Load) -> bool:
    """Every order terminal, no open ledger row, the outbox empty."""
    statuses = _statuses(load.order_ids)
    terminal = sum(statuses[s] for s in TERMINAL_ORDERS)
    return terminal == len(load.order_ids) and not _open_ledger_rows() and not _outbox_rows()


def wait_drained(
    load: Load,
    timeout: float,
    relay_after_s: float | None = 2.0,
    tick: Callable[[], None] | None = None,
) -> float:
    """Seconds until drained; raises ``TimeoutError`` with what is left.

    The harness plays the scheduler's ``relay-outbox`` fire: rows whose after-commit publish
    failed (the broker was down) are relayed here, as the relay actor would every 30 s
    (``relay_after_s`` None: not, when the run tests the relay actor itself). ``tick`` is
    called on every poll that finds the run not drained (a scenario's own fires: T22's re-drive).
    """
    started = time.monotonic()
    deadline = started + timeout
    while True:
        try:
            if drained(load):
                return time.monotonic() - started
            if relay_after_s is not None:
                outbox.relay_pending(relay_after_s)
            if tick is not None:
                tick()
        except Exception as exc:  # noqa: BLE001  (a service is coming back: poll on)
            logger.debug("drain poll failed: %s", exc)
        if time.monotonic() > deadline:
            left = _statuses(load.order_ids)
            raise TimeoutError(
                f"not drained after {timeout:.0f}s: orders {dict(left)}, "
                f"open ledger rows {_open_ledger_rows()}, outbox {_outbox_rows()}"
            )
        _pause.wait(0.25)


def _money(
    load: Load, ledger: dict[str, Any], statuses: dict[int, str]
) -> tuple[int, int, list[str]]:
    charges: dict[int, list[dict[str, Any]]] = {}
    for charge in ledger["charges"]:
        if charge["order_id"] in statuses:
            charges.setdefault(charge["order_id"], []).append(charge)
    refunds = Counter(r["charge_id"] for r in ledger["refunds"])
    duplicate_charges = sum(len(c) - 1 for c in charges.values())
    duplicate_refunds = sum(n - 1 for n in refunds.values() if n > 1)
    wrong: list[str] = []
    for order_id, status in statuses.items():
        mine = charges.get(order_id, [])
        if status in ("completed", "shipped", "delivered"):
            if not any(c["status"] == "captured" and c["refunded_cents"] == 0 for c in mine):
                wrong.append(f"order {order_id} is {status} without a captured charge")
        elif status == "cancelled":
            for charge in mine:
                given_back = (
                    charge["status"] == "voided"
                    or charge["refunded_cents"] == charge["amount_cents"]
                )
                if not given_back:
                    wrong.append(f"cancelled order {order_id} kept its money ({charge['id']})")
    return duplicate_charges, duplicate_refunds, wrong


def _stock(load: Load) -> list[str]:
    errors = []
    with session_scope() as s:
        for product_id, initial in load.stock.items():
            inv = s.get(Inventory, product_id)
            assert inv is not None
            held = s.scalar(
                select(func.coalesce(func.sum(InventoryReservation.quantity), 0)).where(
                    InventoryReservation.product_id == product_id,
                    InventoryReservation.released_at.is_(None),
                )
            )
            if inv.available < 0 or inv.available + inv.reserved != initial or inv.reserved != held:
                errors.append(
                    f"product {product_id}: initial {initial}, available {inv.available}, "
                    f"reserved {inv.reserved}, held by open reservations {held}"
                )
    return errors


def _lost(load: Load) -> list[str]:
    with session_scope() as s:
        final = set(
            s.scalars(
                select(LedgerEntry.message_id).where(
                    LedgerEntry.message_id.in_(load.message_ids),
                    and_(LedgerEntry.state.not_in(OPEN_LEDGER)),
                )
            )
        )
    return [m for m in load.message_ids if m not in final]


def _metrics(port: int | None) -> dict[str, tuple[int, int]]:
    if not port:
        return {}
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    counted: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "shopjobs_jobs_total":
                counted[sample.labels["outcome"]] += int(sample.value)
    with session_scope() as s:
        ledger = Counter(
            dict(
                s.execute(select(LedgerEntry.state, func.count()).group_by(LedgerEntry.state)).all()
            )
        )
    return {outcome: (counted[outcome], ledger[outcome]) for outcome in ("succeeded", "failed")}


def _emails(smtp: Any) -> dict[str, int]:
    from shop.models import Notification

    received = smtp.messages(raw=False)
    ids = [m.get("message_id") for m in received]
    with session_scope() as s:
        states = Counter(
            dict(
                s.execute(
                    select(Notification.status, func.count())
                    .where(Notification.channel == "email")
                    .group_by(Notification.status)
                ).all()
            )
        )
    return {
        "received": len(ids),
        "distinct": len(set(ids)),
        "sent": states["sent"],
        "unsettled": sum(n for st, n in states.items() if st not in ("sent", "failed", "skipped")),
    }


def _pii(load: Load, worker_log: str) -> list[str]:
    """T20 through every row: the customers' addresses and phones must appear nowhere."""
    from jobcore.models import DeadLetter

    where = []
    if any(c in worker_log for c in load.canaries):
        where.append("the worker log")
    with session_scope() as s:
        for label, column in (
            ("ledger args", LedgerEntry.args.cast(String)),
            ("ledger errors", LedgerEntry.error),
            ("ledger tracebacks", LedgerEntry.traceback),
            ("dead letter errors", DeadLetter.error),
            ("dead letter tracebacks", DeadLetter.traceback),
        ):
            for canary in load.canaries:
                table = DeadLetter if label.startswith("dead") else LedgerEntry
                if s.scalar(select(func.count()).select_from(table).where(column.contains(canary))):
                    where.append(label)
                    break
    return where


def audit(
    load: Load,
    payments_ledger: dict[str, Any],
    metrics_port: int | None = None,
    smtp: Any = None,
    worker_log: str = "",
) -> Audit:
    """The invariants, read after ``wait_drained`` (or after giving up on it)."""
    with session_scope() as s:
        statuses = dict(
            s.execute(select(Order.id, Order.status).where(Order.id.in_(load.order_ids))).all()
        )
    duplicate_charges, duplicate_refunds, wrong = _money(load, payments_ledger, statuses)
    return Audit(
        orders=len(load.order_ids),
        stranded=sorted(o for o, st in statuses.items() if st not in TERMINAL_ORDERS),
        lost=_lost(load),
        open_ledger=_open_ledger_rows(),
        outbox_left=_outbox_rows(),
        duplicate_charges=duplicate_charges,
        duplicate_refunds=duplicate_refunds,
        wrong_money=wrong,
        stock_errors=_stock(load),
        metrics=_metrics(metrics_port),
        statuses=Counter(statuses.values()),
        emails=_emails(smtp) if smtp is not None else {},
        pii_leaks=_pii(load, worker_log) if load.canaries else [],
    )
