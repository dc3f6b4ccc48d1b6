"""Notification actors: SMS delivery, the every-minute sweep, campaigns, reminders, cleanup."""

from __future__ import annotations

from typing import Any

import dramatiq

import broker as shop_broker
from jobcore.db import session_scope
from jobcore.errors import InvalidInput, PermanentError
from shop.notifications import campaigns, delivery, requests, sweep
from shop.queues import Queue
from jobcore.validate import positive_id, text

Q = Queue.NOTIFICATIONS.value
PERMANENT = (PermanentError,)


@dramatiq.actor(actor_name="notifications.send_sms", queue_name=Q, throws=PERMANENT,
                max_retries=shop_broker.settings.notify_max_retries,
                on_retry_exhausted="notifications.delivery_gave_up")
def send_sms(notification_id: int) -> str:
    """Deliver one notification row through the SMS gateway (idempotency key per notification)."""
    return delivery.deliver(positive_id(notification_id, "notification_id"))


@dramatiq.actor(actor_name="notifications.delivery_gave_up", queue_name=Q, max_retries=5)
def delivery_gave_up(message_data: dict[str, Any], retry_info: dict[str, Any]) -> None:
    """A delivery's retries ran out: its row says failed, and its campaign counts it."""
    notification_id = (message_data.get("args") or [None])[0]
    if isinstance(notification_id, int) and not isinstance(notification_id, bool):
        delivery.give_up(notification_id, f"gave up after {retry_info.get('retries')} retries")


@dramatiq.actor(actor_name="notifications.send_templated_sms", queue_name=Q, throws=PERMANENT, max_retries=5)
def send_templated_sms(user_id: int | None, template: str, entity_key: str) -> dict[str, Any]:
    uid = None if user_id is None else positive_id(user_id, "user_id")
    return requests.templated(uid, text(template, "template", max_len=64), text(entity_key, "entity_key", max_len=64),
                              "sms")


@dramatiq.actor(actor_name="notifications.process_due", queue_name=Q, max_retries=3)
def process_due() -> dict[str, int]:
    """Every minute: scheduled rows now due, lost deliveries, recurring schedules."""
    return {"recurring": sweep.run_recurring(), "queued": sweep.enqueue_due()}


@dramatiq.actor(actor_name="notifications.send_bulk", queue_name=Q, throws=PERMANENT, max_retries=3)
def send_bulk(name: str, headline: str, body: str) -> int:
    """Start a campaign to every user who accepts e-mail (fanned out in chunks)."""
    with session_scope() as s:
        return campaigns.create_campaign(
            s, name=text(name, "name", max_len=120), headline=text(headline, "headline", max_len=200),
            body=text(body, "body", max_len=5000), chunk_size=shop_broker.settings.campaign_chunk_size)


@dramatiq.actor(actor_name="notifications.campaign_chunk", queue_name=Q, throws=PERMANENT, max_retries=5)
def campaign_chunk(campaign_id: int, chunk: int) -> int:
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 0:
        raise InvalidInput("chunk must be a non-negative integer")
    return campaigns.fan_out_chunk(positive_id(campaign_id, "campaign_id"), chunk)


@dramatiq.actor(actor_name="notifications.campaign_completed", queue_name=Q, throws=PERMANENT, max_retries=5)
def campaign_completed(campaign_id: int) -> bool:
    """The campaign's one completion callback: every message settled, sent or failed."""
    return campaigns.run_completion_callback(positive_id(campaign_id, "campaign_id"))


@dramatiq.actor(actor_name="notifications.payment_reminders", queue_name=Q, max_retries=3)
def payment_reminders() -> int:
    return sweep.payment_reminders()


@dramatiq.actor(actor_name="notifications.birthday_greetings", queue_name=Q, max_retries=3)
def birthday_greetings() -> int:
    return sweep.birthday_greetings()


@dramatiq.actor(actor_name="notifications.cleanup_notifications", queue_name=Q, throws=PERMANENT, max_retries=3)
def cleanup_notifications(days: int | None = None) -> int:
    keep = shop_broker.settings.notify_retention_days if days is None else positive_id(days, "days")
    return sweep.cleanup(keep)
