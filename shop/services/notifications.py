"""Asking for a notification: the one seam every domain uses to tell someone something.

A request is a ``notifications`` row, unique per (template, entity, channel), written in the
caller's transaction; delivery (SMTP, SMS) picks it up from there. ``user_id=None`` means the
shop's administrators. Only ids travel: the template's context is loaded from ``entity_key``
when the message is rendered, so no address or personal data sits in a queue or a log.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shop.models import Notification


def request_notification(
    session: Session,
    *,
    template: str,
    entity_key: str,
    user_id: int | None = None,
    channel: str = "email",
    send_at: dt.datetime | None = None,
) -> int | None:
    """Record one notification; returns its id, or None when (template, entity, channel) exists."""
    if not template or not entity_key:
        raise ValueError("a notification needs a template and an entity key")
    row = session.execute(
        insert(Notification)
        .values(user_id=user_id, channel=channel, template=template, entity_key=entity_key, send_at=send_at)
        .on_conflict_do_nothing(constraint="uq_notifications_template_entity")
        .returning(Notification.id)
    ).first()
    return None if row is None else int(row[0])
