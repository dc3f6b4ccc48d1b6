"""The main job's progress line and final summary, read from the job ledger."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import and_, case, func, select

from jobcore.db import session_scope
from jobcore.models import FINAL_STATES, LedgerEntry
from shop.models import Job


@dataclass
class Snapshot:
    states: Counter[str]
    missing: int  # sent, but not in the ledger yet

    @property
    def total(self) -> int:
        return sum(self.states.values()) + self.missing

    @property
    def finished(self) -> int:
        return sum(n for s, n in self.states.items() if s in FINAL_STATES or s == "scheduled")


def snapshot(sent_ids: list[str]) -> Snapshot:
    """Every job of the run (the run's database is its own); 'scheduled' = delayed to the future."""
    with session_scope() as s:
        state = case(
            (
                and_(
                    LedgerEntry.state.in_(("scheduled", "enqueued")), LedgerEntry.eta > func.now()
                ),
                "scheduled",
            ),
            (LedgerEntry.state == "scheduled", "enqueued"),  # due, the relay not there yet
            else_=LedgerEntry.state,
        )
        rows = s.execute(select(state, func.count()).group_by(state)).all()
        recorded = s.execute(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.message_id.in_(sent_ids))
        ).scalar_one()
    return Snapshot(Counter({st: n for st, n in rows}), len(sent_ids) - recorded)


def progress_line(snap: Snapshot, elapsed: float) -> str:
    parts = ", ".join(f"{state} {n}" for state, n in sorted(snap.states.items()))
    return f"[{elapsed:6.1f}s] {snap.finished}/{snap.total} finished ({parts})"


def report() -> list[str]:
    """Jobs by actor and state, throughput, failures with their reasons, Job records."""
    lines: list[str] = []
    with session_scope() as s:
        by_actor = s.execute(
            select(LedgerEntry.actor, LedgerEntry.state, func.count())
            .group_by(LedgerEntry.actor, LedgerEntry.state)
            .order_by(LedgerEntry.actor, LedgerEntry.state)
        ).all()
        first, last, attempts = s.execute(
            select(
                func.min(LedgerEntry.started_at),
                func.max(LedgerEntry.finished_at),
                func.sum(LedgerEntry.attempts),
            )
        ).one()
        total = s.execute(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.finished_at.is_not(None))
        ).scalar_one()
        failures = s.execute(
            select(LedgerEntry.actor, LedgerEntry.error, func.count())
            .where(LedgerEntry.state.in_(("failed", "dead")))
            .group_by(LedgerEntry.actor, LedgerEntry.error)
            .order_by(func.count().desc())
        ).all()
        jobs = s.execute(
            select(Job.status, func.count()).group_by(Job.status).order_by(Job.status)
        ).all()
    lines.append("jobs by actor and state:")
    for actor, state, n in by_actor:
        lines.append(f"  {actor:45s} {state:10s} {n:6d}")
    if first and last:
        seconds = max((last - first).total_seconds(), 1e-3)
        lines.append(
            f"throughput: {total} jobs finished in {seconds:.2f}s = {total / seconds:.0f} jobs/s "
            f"({attempts} attempts)"
        )
    lines.append("failures with their reasons:" if failures else "failures: none")
    for actor, error, n in failures:
        lines.append(f"  {n:4d} x {actor}: {error}")
    lines.append("shop Job records: " + ", ".join(f"{status} {n}" for status, n in jobs))
    lines.extend(shop_outcomes())
    from devtools.workload.catalog_scenarios import summary_lines as catalog_lines
    from devtools.workload.notification_scenarios import summary_lines
    from devtools.workload.workflow_scenarios import summary_lines as workflow_lines

    lines.extend(catalog_lines())
    lines.extend(summary_lines())
    lines.extend(workflow_lines())
    return lines


def shop_outcomes() -> list[str]:
    """Orders by outcome, payments, refunds and notifications: what the jobs did."""
    from jobcore.models import DeadLetter
    from shop.models import Notification, Order, Payment, Refund

    with session_scope() as s:
        orders = s.execute(
            select(Order.status, func.count())
            .where(Order.payment_token != "seed")
            .group_by(Order.status)
            .order_by(Order.status)
        ).all()
        cause = func.split_part(Order.cancel_reason, ":", 2).label("cause")
        reasons = s.execute(
            select(cause, func.count())
            .where(Order.status == "cancelled", Order.cancel_reason.is_not(None))
            .group_by(cause)
            .order_by(func.count().desc())
        ).all()
        pays = s.execute(
            select(Payment.status, func.count()).group_by(Payment.status).order_by(Payment.status)
        ).all()
        refunds = s.execute(
            select(func.count(), func.coalesce(func.sum(Refund.amount_cents), 0)).where(
                Refund.status == "completed"
            )
        ).one()
        dead = s.execute(
            select(DeadLetter.reason, func.count())
            .group_by(DeadLetter.reason)
            .order_by(DeadLetter.reason)
        ).all()
        notes = s.execute(
            select(Notification.template, func.count())
            .group_by(Notification.template)
            .order_by(Notification.template)
        ).all()
    return [
        "orders by outcome: " + ", ".join(f"{st} {n}" for st, n in orders),
        "cancellation reasons: "
        + (", ".join(f"{r.strip() or '?'} {n}" for r, n in reasons) or "none"),
        "payments: " + ", ".join(f"{st} {n}" for st, n in pays),
        f"refunds completed: {refunds[0]} ({refunds[1] / 100:.2f} EUR)",
        "notifications queued: " + ", ".join(f"{t} {n}" for t, n in notes),
        "dead letters stored (shopjobs dlq list): "
        + (", ".join(f"{r} {n}" for r, n in dead) or "none"),
        "orders re-driven after their jobs were lost (shopjobs orders redrive): "
        + "{} ({} lost jobs)".format(*redriven()),
    ]


def redriven() -> tuple[int, int]:
    """Orders re-driven, and the lost jobs behind them (closed ``dead``, error ``lost: ...``)."""
    from jobcore.ledger.lost import LOST

    with session_scope() as s:
        orders, jobs = s.execute(
            select(func.count(LedgerEntry.order_id.distinct()), func.count()).where(
                LedgerEntry.state == "dead", LedgerEntry.error.startswith(LOST)
            )
        ).one()
    return int(orders), int(jobs)


def workers_line() -> str:
    """The live worker processes as ``shopjobs workers`` sees them (read before they stop)."""
    from jobcore.worker_registry import workers

    with session_scope() as s:
        views = workers(s)
    busy = sum(v.running for v in views)
    return (
        f"== workers (shopjobs workers): {len(views)} processes alive, "
        f"{sum(v.threads for v in views)} threads, {busy} jobs running"
    )
