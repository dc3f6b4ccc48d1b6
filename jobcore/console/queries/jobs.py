"""Jobs from the ledger: filtered pages (keyset on the ledger's indexes), one job, one order.

Pages go newest change first, keyed on (state_changed_at, message_id): a page costs the same at
row 50 or row 5,000,000, and rows arriving meanwhile do not shift the pages after the first.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import Select, and_, or_, select, tuple_
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from jobcore.console.filters import JobFilter
from jobcore.models import AuditLog, DeadLetter, LedgerEntry


@dataclasses.dataclass
class Page:
    rows: list[LedgerEntry]
    next_after: tuple[dt.datetime, str] | None


def filtered(query: Select[Any], f: JobFilter) -> Select[Any]:
    if f.state:
        query = query.where(LedgerEntry.state == f.state)
    if f.actor:
        query = query.where(LedgerEntry.actor == f.actor)
    if f.queue:
        query = query.where(LedgerEntry.queue == f.queue)
    if f.order_id is not None:
        query = query.where(LedgerEntry.order_id == f.order_id)
    if f.user_id is not None:
        query = query.where(LedgerEntry.user_id == f.user_id)
    if f.since is not None:
        query = query.where(LedgerEntry.state_changed_at >= f.since)
    if f.until is not None:
        query = query.where(LedgerEntry.state_changed_at < f.until)
    for key, value in f.args:
        # containment, so the GIN index (jsonb_path_ops) answers it
        query = query.where(LedgerEntry.args.op("@>")(_jsonb({key: value})))
    if f.error:
        pattern = "%" + f.error.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(LedgerEntry.error.ilike(pattern))
    return query


def _jsonb(value: Any) -> Any:
    from sqlalchemy import literal

    return literal(value, type_=JSONB)


def page(
    session: Session, f: JobFilter, *, after: tuple[dt.datetime, str] | None, limit: int
) -> Page:
    query = filtered(select(LedgerEntry), f)
    if after is not None:
        query = query.where(tuple_(LedgerEntry.state_changed_at, LedgerEntry.message_id) < after)
    query = query.order_by(LedgerEntry.state_changed_at.desc(), LedgerEntry.message_id.desc())
    rows = list(session.scalars(query.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, (rows[-1].state_changed_at, rows[-1].message_id) if more else None)


def snapshot(
    session: Session, f: JobFilter, *, states: tuple[str, ...], cap: int
) -> tuple[list[LedgerEntry], bool]:
    """The newest ``cap`` jobs matching ``f`` in ``states`` (a bulk action's preview), and
    whether more matched than the cap."""
    query = filtered(select(LedgerEntry), f).where(LedgerEntry.state.in_(states))
    query = query.order_by(LedgerEntry.state_changed_at.desc(), LedgerEntry.message_id.desc())
    rows = list(session.scalars(query.limit(cap + 1)))
    return rows[:cap], len(rows) > cap


@dataclasses.dataclass
class Lineage:
    replay_of: LedgerEntry | None
    replays: list[LedgerEntry]
    replayed_by: list[AuditLog]  # who replayed (console and CLI audit rows)
    dead_letters: list[DeadLetter]


def lineage(session: Session, row: LedgerEntry) -> Lineage:
    original = session.get(LedgerEntry, row.replay_of) if row.replay_of else None
    replays = list(
        session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.replay_of == row.message_id)
            .order_by(LedgerEntry.enqueued_at)
            .limit(50)
        )
    )
    ids = [row.message_id] + ([row.replay_of] if row.replay_of else [])
    audits = list(
        session.scalars(
            select(AuditLog)
            .where(
                AuditLog.action == "dlq.replay",
                or_(
                    *(
                        AuditLog.details.op("@>")(_jsonb({key: mid}))
                        for mid in ids
                        for key in ("old_message_id", "new_message_id")
                    )
                ),
            )
            .order_by(AuditLog.id)
            .limit(50)
        )
    )
    letters = list(
        session.scalars(
            select(DeadLetter)
            .where(DeadLetter.message_id == row.message_id)
            .order_by(DeadLetter.id)
        )
    )
    return Lineage(original, replays, audits, letters)


def order_timeline(session: Session, order_id: int, limit: int = 1000) -> list[LedgerEntry]:
    """Every job of one order, oldest first (the ledger's order_id index)."""
    query = (
        select(LedgerEntry)
        .where(LedgerEntry.order_id == order_id)
        .order_by(LedgerEntry.enqueued_at.asc().nulls_last(), LedgerEntry.state_changed_at)
        .limit(limit)
    )
    return list(session.scalars(query))


def neighbours(session: Session, row: LedgerEntry) -> list[LedgerEntry]:
    """Jobs of the same order, for a job's page (at most 50)."""
    if row.order_id is None:
        return []
    return list(
        session.scalars(
            select(LedgerEntry)
            .where(and_(LedgerEntry.order_id == row.order_id))
            .order_by(LedgerEntry.enqueued_at.asc().nulls_last())
            .limit(50)
        )
    )
