"""Queueing a notification's delivery message, in the caller's transaction (outbox), by actor name."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update
from sqlalchemy.orm import Session

from jobcore import outbox
from shop.models import Notification

DELIVERY_ACTORS = {"email": "email.send_email", "sms": "notifications.send_sms"}
CHANNELS = tuple(DELIVERY_ACTORS)


def enqueue_delivery(session: Session, notification_id: int, channel: str) -> str:
    """Send the delivery message once this transaction commits; marks the row as queued."""
    if channel not in DELIVERY_ACTORS:
        raise ValueError(f"unknown channel {channel!r}; expected one of {CHANNELS}")
    message_id = outbox.enqueue(session, DELIVERY_ACTORS[channel], notification_id)
    session.execute(
        update(Notification)
        .where(Notification.id == notification_id)
        .values(enqueued_at=dt.datetime.now(dt.UTC))
    )
    return message_id
