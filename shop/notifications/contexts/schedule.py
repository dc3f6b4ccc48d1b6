"""Recurring notification schedules: each occurrence renders the schedule's message."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from jobcore.errors import NotFound
from shop.models import NotificationSchedule
from shop.notifications.contexts._common import int_ident

TEMPLATES: tuple[str, ...] = ("scheduled_message",)
SAMPLE: dict[str, Any] = {
    "schedule": {"id": 4, "name": "weekly-digest", "message": "Your weekly digest."}
}


def load(session: Session, ident: str) -> dict[str, Any]:
    schedule_id = int_ident(ident, "schedule")
    row = session.get(NotificationSchedule, schedule_id)
    if row is None:
        raise NotFound(f"notification schedule {schedule_id} does not exist")
    return {"schedule": {"id": row.id, "name": row.name, "message": row.message}}
