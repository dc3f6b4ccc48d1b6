"""Dead letters for the console: the CLI's filters, keyset pages by id, and a bulk snapshot."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jobcore.console.filters import Params
from jobcore.models import REASONS, DeadLetter

FILTERS = ("queue", "actor", "reason", "replayed")


@dataclasses.dataclass(frozen=True)
class LetterFilter:
    queue: str | None = None
    actor: str | None = None
    reason: str | None = None
    include_replayed: bool = False
    raw: tuple[tuple[str, str], ...] = ()


def letter_filter(params: Params) -> LetterFilter:
    found = LetterFilter(
        queue=params.one("queue"),
        actor=params.one("actor"),
        reason=params.choice("reason", REASONS),
        include_replayed=params.flag("replayed"),
    )
    raw = tuple((k, v) for k in FILTERS for v in params.all(k))
    return dataclasses.replace(found, raw=raw)


def _filtered(query: Any, f: LetterFilter) -> Any:
    if f.queue:
        query = query.where(DeadLetter.queue == f.queue)
    if f.actor:
        query = query.where(DeadLetter.actor == f.actor)
    if f.reason:
        query = query.where(DeadLetter.reason == f.reason)
    if not f.include_replayed:
        query = query.where(DeadLetter.replayed_at.is_(None))
    return query


def page(
    session: Session, f: LetterFilter, *, before: int | None, limit: int
) -> tuple[list[DeadLetter], int | None]:
    query = _filtered(select(DeadLetter), f)
    if before is not None:
        query = query.where(DeadLetter.id < before)
    rows = list(session.scalars(query.order_by(DeadLetter.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    return rows[:limit], rows[limit - 1].id if more else None


def count(session: Session, f: LetterFilter) -> int:
    return int(session.scalar(_filtered(select(func.count()).select_from(DeadLetter), f)) or 0)


def snapshot(session: Session, f: LetterFilter, cap: int) -> tuple[list[DeadLetter], int]:
    """The newest ``cap`` open dead letters matching ``f`` (what a bulk preview shows), and how
    many match in all."""
    open_only = dataclasses.replace(f, include_replayed=False)
    rows = list(
        session.scalars(
            _filtered(select(DeadLetter), open_only).order_by(DeadLetter.id.desc()).limit(cap)
        )
    )
    return rows, count(session, open_only)


def body_view(body: bytes, limit: int = 20_000) -> tuple[str, bool]:
    """The body as pretty JSON when it is JSON, else as text with replacement; and whether cut."""
    cut = len(body) > limit
    raw = body[:limit]
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False), cut
    except (ValueError, UnicodeDecodeError):
        return raw.decode("utf-8", "replace"), cut
