"""Notification actors: SMS delivery, the every-minute sweep, campaigns, reminders, cleanup."""

from __future__ import annotations

from typing import Any

from broker import routes, settings
from jobcore.db import session_scope
from jobcore.errors import InvalidInput
from jobcore.validate import positive_id, text
from shop.notifications import campaigns, delivery, requests, sweep


@routes.actor("notifications.send_sms")
def send_sms(notification_id: int) -> str:
    """Deliver one notification row through the SMS gateway (idempotency key per notification)."""
    return delivery.deliver(positive_id(notification_id, "notification_id"))


@routes.actor("notifications.delivery_gave_up")
def delivery_gave_up(message_data: dict[str, Any], retry_info: dict[str, Any]) -> None:
    """A delivery's retries ran out: its row says failed, and its campaign counts it."""
    notification_id = (message_data.get("args") or [None])[0]
    if isinstance(notification_id, int) and not isinstance(notification_id, bool):
        delivery.give_up(notification_id, f"gave up after {retry_info.get('retries')} retries")


@routes.actor("notifications.send_templated_sms")
def send_templated_sms(user_id: int | None, template: str, entity_key: str) -> dict[str, Any]:
    uid = None if user_id is None else positive_id(user_id, "user_id")
    return requests.templated(
        uid,
        text(template, "template", max_len=64),
        text(entity_key, "entity_key", max_len=64),
        "sms",
    )


@routes.actor("notifications.process_due")
def process_due() -> dict[str, int]:
    """Every minute: scheduled rows now due, lost deliveries, recurring schedules."""
    return {"recurring": sweep.run_recurring(), "queued": sweep.enqueue_due()}


@routes.actor("notifications.send_bulk")
def send_bulk(name: str, headline: str, body: str) -> int:
    """Start a campaign to every user who accepts e-mail (fanned out in chunks)."""
    with session_scope() as s:
        return campaigns.create_campaign(
            s,
            name=text(name, "name", max_len=120),
            headline=text(headline, "headline", max_len=200),
            body=text(body, "body", max_len=5000),
            chunk_size=settings.campaign_chunk_size,
        )


@routes.actor("notifications.campaign_chunk")
def campaign_chunk(campaign_id: int, chunk: int) -> int:
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 0:
        raise InvalidInput("chunk must be a non-negative integer")
    return campaigns.fan_out_chunk(positive_id(campaign_id, "campaign_id"), chunk)


@routes.actor("notifications.campaign_completed")
def campaign_completed(campaign_id: int) -> bool:
    """The campaign's one completion callback: every message settled, sent or failed."""
    return campaigns.run_completion_callback(positive_id(campaign_id, "campaign_id"))


@routes.actor("notifications.payment_reminders")
def payment_reminders() -> int:
    return sweep.payment_reminders()


@routes.actor("notifications.birthday_greetings")
def birthday_greetings() -> int:
    return sweep.birthday_greetings()


@routes.actor("notifications.cleanup_notifications")
def cleanup_notifications(days: int | None = None) -> int:
    keep = settings.notify_retention_days if days is None else positive_id(days, "days")
    return sweep.cleanup(keep)
