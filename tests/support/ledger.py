"""Reading the job ledger the way an operator would."""

from __future__ import annotations

from jobcore.db import session_scope
from jobcore.models import LedgerEntry


def entry(message_id: str) -> LedgerEntry | None:
    with session_scope() as s:
        return s.get(LedgerEntry, message_id)


def state(message_id: str) -> str | None:
    row = entry(message_id)
    return row.state if row else None
