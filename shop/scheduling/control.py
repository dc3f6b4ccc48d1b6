"""What operators do to schedules at run time: list, pause, resume, override, trigger.

Changes are rows in ``schedule_state``; the running leader re-reads them every tick, so none
needs a restart. Resuming and changing a trigger count fires from now on: the time spent paused
or under the old trigger is not a backlog of misfires.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from jobcore.db import session_scope
from jobcore.errors import InvalidInput, NotFound
from jobcore.models import AuditLog
from shop.models import ScheduleState
from shop.scheduling import firing, leader, triggers
from shop.scheduling.entries import Entry, find
from shop.scheduling.outcomes import last_fire_outcomes


def entry_named(entries: Sequence[Entry], name: str) -> Entry:
    entry = find(entries, name)
    if entry is None:
        known = ", ".join(e.name for e in entries) or "none"
        raise NotFound(f"no schedule named {name!r} (known: {known})")
    return entry


def listing(entries: Sequence[Entry], now: dt.datetime | None = None) -> dict[str, Any]:
    """Every entry with its effective trigger, next and last fire, last outcome; and the leader."""
    now = now or firing.utcnow()
    with session_scope() as s:
        states = {
            row.name: row
            for row in s.scalars(
                select(ScheduleState).where(ScheduleState.name.in_([e.name for e in entries]))
            )
        }
        outcomes = last_fire_outcomes(s, states.values())
        current = leader.current_leader(s.connection())
    rows = []
    for entry in entries:
        state = states.get(entry.name)
        running = firing.effective(entry, state)
        upcoming = firing.next_fire(entry, state, now)
        last_id = state.last_message_id if state else None
        rows.append(
            {
                "name": entry.name,
                "actor": entry.actor,
                "trigger": triggers.describe(running.spec)
                + (" (override)" if running.overridden else ""),
                "tz": entry.tz,
                "misfire": entry.misfire
                if entry.misfire == "skip"
                else f"catch_up {entry.grace_s:g}s",
                "paused": bool(state and state.paused),
                "next_fire": max(upcoming, now.replace(microsecond=0)) if upcoming else None,
                "last_fire": state.last_fire_time if state else None,
                "last_outcome": outcomes.get(last_id, "unknown") if last_id else None,
                "misfires": state.misfires if state else 0,
            }
        )
    return {"schedules": rows, "leader": current}


def set_paused(
    entries: Sequence[Entry], name: str, paused: bool, operator: str | None = None
) -> bool:
    """Pause or resume; returns whether anything changed. With ``operator``, audited."""
    entry = entry_named(entries, name)
    now = firing.utcnow()
    with session_scope() as s:
        state = firing.lock_state(s, entry.name, now)
        changed = state.paused != paused
        if changed:
            state.paused = paused
            if not paused:
                state.checked_until = max(state.checked_until, now)
        if operator is not None:
            s.add(
                AuditLog(
                    actor=operator,
                    action="schedules.pause" if paused else "schedules.resume",
                    subject=entry.name,
                    details={"changed": changed},
                )
            )
    return changed


def set_override(
    entries: Sequence[Entry],
    name: str,
    *,
    cron: str | None = None,
    every_s: float | None = None,
    args: list[Any] | None = None,
) -> dict[str, Any]:
    """Store a trigger and/or args override; a bad trigger raises InvalidInput (nothing stored)."""
    entry = entry_named(entries, name)
    spec: dict[str, Any] | None = None
    if cron is not None and every_s is not None:
        raise InvalidInput("give --cron or --every, not both")
    if cron is not None:
        spec = {"cron": cron}
    elif every_s is not None:
        spec = {"every_s": every_s}
    if spec is None and args is None:
        raise InvalidInput("nothing to set: give --cron, --every or --args (or --clear)")
    if spec is not None:
        try:
            triggers.build_trigger(spec, entry.tz)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
    if args is not None and not isinstance(args, list):
        raise InvalidInput("--args must be a JSON list of the actor's positional arguments")
    now = firing.utcnow()
    with session_scope() as s:
        state = firing.lock_state(s, entry.name, now)
        if spec is not None:
            state.override_trigger = spec
            state.checked_until = max(state.checked_until, now)
        if args is not None:
            state.override_args = args
        return {"trigger": state.override_trigger, "args": state.override_args}


def clear_override(entries: Sequence[Entry], name: str) -> None:
    """Back to the declared trigger and args, counting fires from now on."""
    entry = entry_named(entries, name)
    now = firing.utcnow()
    with session_scope() as s:
        state = firing.lock_state(s, entry.name, now)
        if state.override_trigger is not None:
            state.checked_until = max(state.checked_until, now)
        state.override_trigger = None
        state.override_args = None


def trigger(
    entries: Sequence[Entry], name: str, operator: str | None = None
) -> tuple[dt.datetime, str | None]:
    """Fire the entry once now, through the same one-fire-one-message path. With ``operator``,
    audited (with the message id, or none when that second had fired already)."""
    entry = entry_named(entries, name)
    fire_time, message_id = firing.trigger_now(entry)
    if operator is not None:
        with session_scope() as s:
            s.add(
                AuditLog(
                    actor=operator,
                    action="schedules.trigger",
                    subject=entry.name,
                    details={"fire_time": fire_time.isoformat(), "message_id": message_id},
                )
            )
    return fire_time, message_id
