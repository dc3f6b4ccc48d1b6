"""The scheduler's part of the main job's summary: fires per schedule, misfires, the leader."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict

from sqlalchemy import func, select

from jobcore.db import session_scope
from shop.models import ScheduleFire, ScheduleState
from shop.scheduling.leader import current_leader
from shop.scheduling.outcomes import last_fire_outcomes


def _hms(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%H:%M:%SZ") if value else "-"


def fires_summary() -> list[str]:
    """Lines like ``relay-outbox  fires 4 (on time 4), misfires 0, last 12:00:30Z enqueued``."""
    with session_scope() as s:
        counts = s.execute(
            select(ScheduleFire.schedule, ScheduleFire.reason, func.count()).group_by(
                ScheduleFire.schedule, ScheduleFire.reason
            )
        ).all()
        states = {row.name: row for row in s.scalars(select(ScheduleState))}
        outcomes = last_fire_outcomes(s, states.values())
        holder = current_leader(s.connection())
    by_schedule: dict[str, Counter[str]] = defaultdict(Counter)
    for schedule, reason, n in counts:
        by_schedule[schedule][reason] += n
    if holder is None:
        lines = ["scheduler: no leader recorded"]
    else:
        held = "holds the lock" if holder["holds_lock"] else "stale, lock not held"
        lines = [f"scheduler: leader {holder['holder']} since {_hms(holder['since'])} ({held})"]
    names = sorted(set(by_schedule) | set(states))
    width = max((len(n) for n in names), default=0)
    for name in names:
        reasons = by_schedule[name]
        state = states.get(name)
        parts = ", ".join(
            f"{label} {reasons[key]}"
            for key, label in (
                ("on_time", "on time"),
                ("catch_up", "catch-up"),
                ("manual", "manual"),
            )
            if reasons[key]
        )
        last = "-"
        if state is not None and state.last_message_id:
            last = f"{_hms(state.last_fire_time)} {outcomes.get(state.last_message_id, 'unknown')}"
        lines.append(
            f"  {name:<{width}}  fires {sum(reasons.values())}{f' ({parts})' if parts else ''}, "
            f"misfires {state.misfires if state else 0}, last {last}"
            + (", paused" if state is not None and state.paused else "")
        )
    if not names:
        lines.append("  no schedule has fired")
    return lines
