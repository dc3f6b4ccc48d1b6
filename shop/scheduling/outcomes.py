"""What became of each schedule's last fire: its message's state in the job ledger."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobcore.models import LedgerEntry
from shop.models import ScheduleState


def last_fire_outcomes(session: Session, states: Iterable[ScheduleState]) -> dict[str, str]:
    """message_id -> ledger state, for the last fire of each given schedule."""
    last_ids = [st.last_message_id for st in states if st.last_message_id]
    if not last_ids:
        return {}
    rows = session.execute(
        select(LedgerEntry.message_id, LedgerEntry.state).where(
            LedgerEntry.message_id.in_(last_ids)
        )
    )
    return {message_id: state for message_id, state in rows}
