"""Subscription actors: the daily renewal fan-out, one renewal, and the day-ahead reminders."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from broker import routes, settings
from jobcore import outbox
from jobcore.validate import positive_id
from shop.subscriptions import subscriptions


def _today() -> dt.date:
    return subscriptions.local_today(settings.timezone)


@routes.actor("subscriptions.process_due")
def process_due_subscriptions() -> dict[str, Any]:
    """Fan out one ``subscriptions.process_single`` per subscription due today (shop time zone)."""

    def fan_out(session: Session, subscription_id: int) -> str:
        return outbox.enqueue(session, process_single_subscription, subscription_id)

    return subscriptions.process_due(_today(), fan_out)


@routes.actor("subscriptions.process_single")
def process_single_subscription(subscription_id: int) -> dict[str, Any]:
    """Renew one subscription: order + pipeline + next date, once per (subscription, due date)."""
    return subscriptions.process_single(positive_id(subscription_id, "subscription_id"), _today())


@routes.actor("subscriptions.send_renewal_reminders")
def send_subscription_renewal_reminders() -> dict[str, Any]:
    """Remind customers whose subscription renews tomorrow."""
    return subscriptions.send_renewal_reminders(_today())
