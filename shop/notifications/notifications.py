"""Asking for a notification: the one seam every domain uses to tell someone something.

A request is a ``notifications`` row, unique per (template, entity, channel), written in the
caller's transaction; delivery (SMTP, SMS) picks it up from there. ``user_id=None`` means the
shop's administrators. Only ids travel: the template's context is loaded from ``entity_key``
when the message is rendered, so no address or personal data sits in a queue or a log.

A request without ``send_at`` (or one already due) also queues its delivery through the
outbox in the same transaction, so it goes out at once after COMMIT; a later ``send_at`` is
picked up by the every-minute sweep (``shop.notifications.sweep.enqueue_due``), which also re-queues
anything whose delivery message was lost.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shop.models import Notification
from shop.notifications.dispatch import CHANNELS, enqueue_delivery


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
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}; expected one of {CHANNELS}")
    if send_at is not None and send_at.tzinfo is None:
        raise ValueError("send_at must be timezone-aware")
    row = session.execute(
        insert(Notification)
        .values(
            user_id=user_id,
            channel=channel,
            template=template,
            entity_key=entity_key,
            send_at=send_at,
        )
        .on_conflict_do_nothing(constraint="uq_notifications_template_entity")
        .returning(Notification.id)
    ).first()
    if row is None:
        return None
    notification_id = int(row[0])
    if send_at is None or send_at <= dt.datetime.now(dt.UTC):
        enqueue_delivery(session, notification_id, channel)
    return notification_id
