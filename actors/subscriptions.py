"""Subscription actors: the daily renewal fan-out, one renewal, and the day-ahead reminders."""

from __future__ import annotations

import datetime as dt
from typing import Any

import dramatiq
from sqlalchemy.orm import Session

import broker as shop_broker
from jobcore import outbox
from jobcore.errors import PermanentError
from shop.queues import Queue
from shop.subscriptions import subscriptions
from jobcore.validate import positive_id


def _today() -> dt.date:
    return subscriptions.local_today(shop_broker.settings.timezone)


@dramatiq.actor(actor_name="subscriptions.process_due", queue_name=Queue.MAINTENANCE.value,
                throws=(PermanentError,), max_retries=5)
def process_due_subscriptions() -> dict[str, Any]:
    """Fan out one ``subscriptions.process_single`` per subscription due today (shop time zone)."""

    def fan_out(session: Session, subscription_id: int) -> str:
        return outbox.enqueue(session, process_single_subscription, subscription_id)

    return subscriptions.process_due(_today(), fan_out)


@dramatiq.actor(actor_name="subscriptions.process_single", queue_name=Queue.ORDERS.value,
                throws=(PermanentError,), max_retries=8)
def process_single_subscription(subscription_id: int) -> dict[str, Any]:
    """Renew one subscription: order + pipeline + next date, once per (subscription, due date)."""
    return subscriptions.process_single(positive_id(subscription_id, "subscription_id"), _today())


@dramatiq.actor(actor_name="subscriptions.send_renewal_reminders", queue_name=Queue.MAINTENANCE.value,
                throws=(PermanentError,), max_retries=5)
def send_subscription_renewal_reminders() -> dict[str, Any]:
    """Remind customers whose subscription renews tomorrow."""
    return subscriptions.send_renewal_reminders(_today())
