"""Housekeeping of the job system itself: ledger pruning, in bounded batches."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select

from shop.db import session_scope
from shop.models import FINAL_STATES, LedgerEntry


def prune_job_ledger(days: int, batch: int = 5000, states: tuple[str, ...] = FINAL_STATES) -> int:
    """Delete finished ledger rows older than ``days``, one short transaction per batch."""
    cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)
    removed = 0
    while True:
        with session_scope() as s:
            ids = select(LedgerEntry.message_id).where(
                LedgerEntry.state.in_(states), LedgerEntry.state_changed_at < cutoff
            ).limit(batch)
            count = s.execute(delete(LedgerEntry).where(LedgerEntry.message_id.in_(ids))).rowcount
        removed += count
        if count < batch:
            return removed
