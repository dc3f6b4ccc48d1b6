"""Queueing a notification's delivery message, in the caller's transaction (outbox)."""

from __future__ import annotations

import datetime as dt
import importlib
from typing import Any

import dramatiq
from sqlalchemy import update
from sqlalchemy.orm import Session

from jobcore import outbox
from shop.models import Notification

DELIVERY_ACTORS = {"email": "email.send_email", "sms": "notifications.send_sms"}
CHANNELS = tuple(DELIVERY_ACTORS)


def actor(name: str) -> dramatiq.Actor[Any, Any]:
    """The declared actor ``name``. Importing the actor modules (cached after the first call)
    sets up the project's broker first, so a producer that never imported ``actors`` still
    publishes on it rather than on Dramatiq's default."""
    importlib.import_module("actors.email")
    importlib.import_module("actors.notifications")
    return dramatiq.get_broker().get_actor(name)


def enqueue_delivery(session: Session, notification_id: int, channel: str) -> str:
    """Send the delivery message once this transaction commits; marks the row as queued."""
    if channel not in DELIVERY_ACTORS:
        raise ValueError(f"unknown channel {channel!r}; expected one of {CHANNELS}")
    message_id = outbox.enqueue(session, actor(DELIVERY_ACTORS[channel]), notification_id)
    session.execute(
        update(Notification).where(Notification.id == notification_id)
        .values(enqueued_at=dt.datetime.now(dt.UTC))
    )
    return message_id
