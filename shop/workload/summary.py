"""The main job's progress line and final summary, read from the job ledger."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func, select

from shop.db import session_scope
from shop.models import FINAL_STATES, Job, LedgerEntry


@dataclass
class Snapshot:
    states: Counter[str]
    total: int

    @property
    def finished(self) -> int:
        return sum(n for s, n in self.states.items() if s in FINAL_STATES)


def snapshot(message_ids: list[str]) -> Snapshot:
    with session_scope() as s:
        rows = s.execute(
            select(LedgerEntry.state, func.count()).where(LedgerEntry.message_id.in_(message_ids)).group_by(LedgerEntry.state)
        ).all()
    states = Counter({state: n for state, n in rows})
    recorded = sum(states.values())
    if recorded < len(message_ids):
        states["not yet recorded"] = len(message_ids) - recorded
    return Snapshot(states, len(message_ids))


def progress_line(snap: Snapshot, elapsed: float) -> str:
    parts = ", ".join(f"{state} {n}" for state, n in sorted(snap.states.items()))
    return f"[{elapsed:6.1f}s] {snap.finished}/{snap.total} finished ({parts})"


def report(message_ids: list[str]) -> list[str]:
    """Jobs by actor and state, throughput, failures with their reasons, Job records."""
    lines: list[str] = []
    with session_scope() as s:
        by_actor = s.execute(
            select(LedgerEntry.actor, LedgerEntry.state, func.count())
            .where(LedgerEntry.message_id.in_(message_ids))
            .group_by(LedgerEntry.actor, LedgerEntry.state)
            .order_by(LedgerEntry.actor, LedgerEntry.state)
        ).all()
        first, last, attempts = s.execute(
            select(func.min(LedgerEntry.started_at), func.max(LedgerEntry.finished_at), func.sum(LedgerEntry.attempts))
            .where(LedgerEntry.message_id.in_(message_ids))
        ).one()
        failures = s.execute(
            select(LedgerEntry.actor, LedgerEntry.error, func.count())
            .where(LedgerEntry.message_id.in_(message_ids), LedgerEntry.state.in_(("failed", "dead")))
            .group_by(LedgerEntry.actor, LedgerEntry.error)
            .order_by(func.count().desc())
        ).all()
        jobs = s.execute(select(Job.status, func.count()).group_by(Job.status).order_by(Job.status)).all()
    lines.append("jobs by actor and state:")
    for actor, state, n in by_actor:
        lines.append(f"  {actor:45s} {state:10s} {n:6d}")
    if first and last:
        seconds = max((last - first).total_seconds(), 1e-3)
        lines.append(f"throughput: {len(message_ids)} jobs in {seconds:.2f}s = {len(message_ids) / seconds:.0f} jobs/s "
                     f"({attempts} attempts)")
    lines.append("failures with their reasons:" if failures else "failures: none")
    for actor, error, n in failures:
        lines.append(f"  {n:4d} x {actor}: {error}")
    lines.append("shop Job records: " + ", ".join(f"{status} {n}" for status, n in jobs))
    return lines
