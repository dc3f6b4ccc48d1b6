"""Firing: one message per logical fire, the misfire policy, the persisted progress.

Each fire happens in one transaction that locks the schedule's ``schedule_state`` row,
inserts the ``schedule_fires`` row (UNIQUE(schedule, fire_time), ON CONFLICT DO NOTHING) and
enqueues the message through the outbox with the id derived from (schedule, fire time). A
conflict means the fire was already sent (a second leader for a moment, a restart at the fire
time): nothing is sent. The message is published after COMMIT; nothing on rollback.

Runs without leadership or a loop, so tests (and time-machine) can drive it in-process.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

import dramatiq
from apscheduler.triggers.base import BaseTrigger
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from jobcore import outbox
from jobcore.db import get_engine, session_scope
from jobcore.metrics import scheduling as metrics
from jobcore.models import OutboxMessage
from shop.models import ScheduleFire, ScheduleState
from shop.scheduling import triggers
from shop.scheduling.entries import Entry, message_id

logger = logging.getLogger(__name__)

# fires handled per schedule and step; a longer backlog drains over several steps
ENUMERATION_LIMIT = 10_000


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclasses.dataclass(frozen=True)
class Effective:
    """An entry as it runs now: the declared trigger and args, or the operator's overrides."""

    spec: dict[str, Any]
    trigger: BaseTrigger
    args: tuple[Any, ...]
    overridden: bool


def effective(entry: Entry, state: ScheduleState | None) -> Effective:
    spec = entry.trigger_spec
    args = entry.args
    if state is not None and state.override_trigger:
        spec = dict(state.override_trigger)
    if state is not None and state.override_args is not None:
        args = tuple(state.override_args)
    overridden = spec != entry.trigger_spec or args != entry.args
    return Effective(spec, triggers.build_trigger(spec, entry.tz), args, overridden)


def next_fire(entry: Entry, state: ScheduleState | None, now: dt.datetime) -> dt.datetime | None:
    """When the entry fires next: ``None`` while paused, a past time while fires are due."""
    if state is not None and state.paused:
        return None
    after = now if state is None else state.checked_until
    return triggers.next_after(effective(entry, state).trigger, after)


def fire_pending(
    entries: Sequence[Entry], *, on_time_s: float, now: dt.datetime | None = None
) -> dt.datetime | None:
    """Send every due fire of every entry; returns the earliest next fire time.

    One unlocked read finds the entries with due fires; only those open a locking transaction.
    """
    now = now or utcnow()
    with session_scope() as s:
        rows = s.scalars(
            select(ScheduleState).where(ScheduleState.name.in_([e.name for e in entries]))
        )
        states = {row.name: row for row in rows}
    earliest: dt.datetime | None = None
    for entry in entries:
        state = states.get(entry.name)
        upcoming = next_fire(entry, state, now)
        if state is None or (upcoming is not None and upcoming <= now):
            try:
                upcoming = fire_entry(entry, on_time_s=on_time_s, now=now)
            except SQLAlchemyError:
                logger.exception("schedule %s: firing failed; retrying next tick", entry.name)
                continue
        if upcoming is not None and (earliest is None or upcoming < earliest):
            earliest = upcoming
    return earliest


def fire_entry(
    entry: Entry, *, on_time_s: float, now: dt.datetime | None = None
) -> dt.datetime | None:
    """Handle one entry's due fires by its misfire policy; returns its next fire time.

    A fire handled within ``on_time_s`` of its time is on time and sent. Later ones are
    misfires: ``skip`` counts and logs them; ``catch_up`` sends the newest one once if it is at
    most ``grace_s`` late and no on-time fire is sent now (the rest coalesce into it).
    """
    now = now or utcnow()
    with session_scope() as s:
        state = lock_state(s, entry.name, now)
        if state.paused:
            return None
        running = effective(entry, state)
        due = triggers.fires_between(running.trigger, state.checked_until, now, ENUMERATION_LIMIT)
        if not due:
            return triggers.next_after(running.trigger, max(state.checked_until, now))
        backlog = len(due) == ENUMERATION_LIMIT
        on_time = [] if backlog else [t for t in due if (now - t).total_seconds() <= on_time_s]
        late = due[: len(due) - len(on_time)]
        sends = [(t, "on_time") for t in on_time]
        if (
            not sends
            and late
            and not backlog
            and entry.misfire == "catch_up"
            and (now - late[-1]).total_seconds() <= entry.grace_s
        ):
            sends.append((late.pop(), "catch_up"))
        for fire_time, reason in sends:
            send(s, entry, state, fire_time, running.args, reason)
        if late:
            state.misfires += len(late)
            metrics.MISFIRES.labels(entry.name).inc(len(late))
            logger.warning(
                "schedule %s missed %d fires from %s to %s (misfire policy %s%s)",
                entry.name,
                len(late),
                late[0].isoformat(),
                late[-1].isoformat(),
                entry.misfire,
                ", coalesced into the catch-up" if sends and sends[-1][1] == "catch_up" else "",
            )
        state.checked_until = due[-1]
        return triggers.next_after(running.trigger, max(due[-1], now))


def lock_state(s: Session, name: str, now: dt.datetime) -> ScheduleState:
    """The schedule's state row, created on first sight (fires count from ``now``), locked."""
    s.execute(
        insert(ScheduleState)
        .values(name=name, checked_until=now, paused=False, misfires=0)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    return s.scalars(
        select(ScheduleState)
        .where(ScheduleState.name == name)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def send(
    s: Session,
    entry: Entry,
    state: ScheduleState,
    fire_time: dt.datetime,
    args: tuple[Any, ...],
    reason: str,
) -> str | None:
    """Claim the fire row and enqueue its message in the caller's transaction; None if fired."""
    mid = message_id(entry.name, fire_time)
    claimed = s.scalar(
        insert(ScheduleFire)
        .values(schedule=entry.name, fire_time=fire_time, message_id=mid, reason=reason)
        .on_conflict_do_nothing(index_elements=["schedule", "fire_time"])
        .returning(ScheduleFire.id)
    )
    if claimed is None:
        logger.info(
            "schedule %s fire at %s was already sent; skipped", entry.name, fire_time.isoformat()
        )
        return None
    outbox.enqueue(s, entry.actor, *args, message_id=mid)
    metrics.FIRES.labels(entry.name, reason).inc()
    if state.last_fire_time is None or fire_time >= state.last_fire_time:
        state.last_fire_time, state.last_message_id = fire_time, mid
    logger.info(
        "schedule %s fired at %s (%s) as message %r", entry.name, fire_time.isoformat(), reason, mid
    )
    return mid


def trigger_now(entry: Entry, now: dt.datetime | None = None) -> tuple[dt.datetime, str | None]:
    """Fire ``entry`` once now (fire time = now truncated to the second), through the same dedupe.

    Works on a paused entry too (the operator asked for it). Returns the fire time and the
    message id, or None as id when that second had already fired.
    """
    fire_time = (now or utcnow()).replace(microsecond=0)
    with session_scope() as s:
        state = lock_state(s, entry.name, fire_time)
        mid = send(s, entry, state, fire_time, effective(entry, state).args, "manual")
    return fire_time, mid


def relay_stragglers(older_than_s: float) -> int:
    """Publish fire messages whose after-commit publish never happened (a leader killed between
    COMMIT and publish), without waiting for the outbox relay job, which needs a worker."""
    cutoff = utcnow() - dt.timedelta(seconds=older_than_s)
    broker = dramatiq.get_broker()
    with get_engine().begin() as conn:
        rows = conn.execute(
            select(OutboxMessage.id, OutboxMessage.body, OutboxMessage.delay_ms)
            .join(ScheduleFire, ScheduleFire.message_id == OutboxMessage.message_id)
            .where(OutboxMessage.created_at < cutoff)
            .order_by(OutboxMessage.id)
            .limit(100)
            .with_for_update(of=OutboxMessage, skip_locked=True)
        ).all()
        for row in rows:
            broker.enqueue(dramatiq.Message.decode(row.body), delay=row.delay_ms)
        if rows:
            conn.execute(delete(OutboxMessage).where(OutboxMessage.id.in_([r.id for r in rows])))
            logger.warning("published %d scheduled messages left in the outbox", len(rows))
    return len(rows)
