"""What happened to job X: the ledger read by message id, by order and by filters."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from jobcore.errors import InvalidInput
from jobcore.models import LEDGER_STATES, LedgerEntry

SUMMARY_FIELDS = (
    "message_id",
    "actor",
    "queue",
    "state",
    "attempts",
    "order_id",
    "enqueued_at",
    "eta",  # a scheduled job's due time, a retry's or a short delay's ETA
    "started_at",
    "finished_at",
    "error",
)


def as_dict(row: LedgerEntry, *, full: bool = False) -> dict[str, Any]:
    fields = [c.key for c in LedgerEntry.__table__.columns] if full else SUMMARY_FIELDS
    out = {}
    for name in fields:
        value = getattr(row, name)
        out[name] = value.isoformat() if isinstance(value, dt.datetime) else value
    return out


def job(session: Session, message_id: str) -> LedgerEntry | None:
    return session.get(LedgerEntry, message_id)


def jobs(
    session: Session,
    *,
    state: str | None = None,
    actor: str | None = None,
    order_id: int | None = None,
    since: dt.datetime | None = None,
    limit: int = 50,
) -> list[LedgerEntry]:
    """Newest first, filtered; ``state`` must be a ledger state."""
    query = _filtered(select(LedgerEntry), state=state, actor=actor, order_id=order_id)
    if since is not None:
        query = query.where(LedgerEntry.state_changed_at >= since)
    query = query.order_by(LedgerEntry.state_changed_at.desc()).limit(limit)
    return list(session.scalars(query))


def history_of_order(session: Session, order_id: int) -> list[LedgerEntry]:
    """Every job of one order, oldest first: where its pipeline went and where it stopped."""
    query = (
        select(LedgerEntry)
        .where(LedgerEntry.order_id == order_id)
        .order_by(LedgerEntry.enqueued_at.asc().nulls_last(), LedgerEntry.state_changed_at)
    )
    return list(session.scalars(query))


def changed_after(
    session: Session,
    after: dt.datetime,
    *,
    state: str | None = None,
    actor: str | None = None,
    order_id: int | None = None,
    limit: int = 500,
) -> list[LedgerEntry]:
    """Jobs whose state changed after ``after``, oldest change first (what ``jobs tail`` follows)."""
    query = _filtered(
        select(LedgerEntry).where(LedgerEntry.state_changed_at > after),
        state=state,
        actor=actor,
        order_id=order_id,
    )
    query = query.order_by(LedgerEntry.state_changed_at, LedgerEntry.message_id).limit(limit)
    return list(session.scalars(query))


def _filtered(
    query: Select[Any], *, state: str | None, actor: str | None, order_id: int | None
) -> Select[Any]:
    """The filters ``jobs list`` and ``jobs tail`` share; ``state`` must be a ledger state."""
    if state is not None and state not in LEDGER_STATES:
        raise InvalidInput(f"unknown state {state!r}; one of: {', '.join(LEDGER_STATES)}")
    if state:
        query = query.where(LedgerEntry.state == state)
    if actor:
        query = query.where(LedgerEntry.actor == actor)
    if order_id is not None:
        query = query.where(LedgerEntry.order_id == order_id)
    return query
