"""The named notification jobs of the reference catalogue, as requests on the one seam.

Each checks its subject exists (a missing one is ``NotFound``: permanent), then records the
notification; the delivery actor sends it. A repeat finds the row and records nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from jobcore.db import session_scope
from jobcore.errors import InvalidInput, NotFound
from shop.job_records import Progress, job_handler
from shop.models import Notification, Order, Subscription, User
from shop.notifications import delivery, render
from shop.notifications.context_lookup import module_for, parse_entity_key
from shop.notifications.dispatch import CHANNELS
from shop.notifications.notifications import request_notification


def _order(order_id: int) -> Order:
    with session_scope() as s:
        order = s.get(Order, order_id)
        if order is None:
            raise NotFound(f"order {order_id} does not exist")
        s.expunge(order)
        return order


def _request(
    template: str, entity_key: str, user_id: int | None, channel: str = "email"
) -> dict[str, Any]:
    with session_scope() as s:
        created = request_notification(
            s, template=template, entity_key=entity_key, user_id=user_id, channel=channel
        )
    return {"notification_id": created, "created": created is not None}


def order_confirmation(order_id: int) -> dict[str, Any]:
    order = _order(order_id)
    return _request("order_confirmation", f"order:{order_id}", order.user_id)


def shipping_notification(order_id: int) -> dict[str, Any]:
    order = _order(order_id)
    if not order.tracking_number:
        raise InvalidInput(f"order {order_id} has no tracking number yet")
    return _request("order_shipped", f"order:{order_id}", order.user_id)


def payment_failed(order_id: int) -> dict[str, Any]:
    order = _order(order_id)
    return _request("payment_failed", f"order:{order_id}", order.user_id)


def welcome(user_id: int) -> dict[str, Any]:
    with session_scope() as s:
        if s.get(User, user_id) is None:
            raise NotFound(f"user {user_id} does not exist")
    return _request("welcome", f"user:{user_id}", user_id)


def renewal_reminder(subscription_id: int) -> dict[str, Any]:
    """Keyed by the delivery date, as the subscriptions fan-out does: one reminder per renewal."""
    with session_scope() as s:
        sub = s.get(Subscription, subscription_id)
        if sub is None:
            raise NotFound(f"subscription {subscription_id} does not exist")
        key, user_id = f"subscription:{sub.id}#{sub.next_delivery_date.isoformat()}", sub.user_id
    return _request("subscription_renewal_reminder", key, user_id)


def check_template(template: str, entity_key: str, channel: str) -> None:
    """Refuse a template that does not exist or does not belong to the entity's kind, at once."""
    if channel not in CHANNELS:
        raise InvalidInput(f"unknown channel {channel!r}; expected one of {CHANNELS}")
    kind, _, _ = parse_entity_key(entity_key)
    if template not in module_for(kind).TEMPLATES:
        raise InvalidInput(f"template {template!r} is not rendered with '{kind}' entities")
    if channel == "sms" and not render.has_sms(template):
        raise InvalidInput(f"template {template!r} has no SMS text")


def templated(user_id: int | None, template: str, entity_key: str, channel: str) -> dict[str, Any]:
    check_template(template, entity_key, channel)
    return _request(template, entity_key, user_id, channel)


def _params(params: dict[str, Any]) -> tuple[str, str, int | None, str]:
    template, entity_key = params.get("template"), params.get("entity_key")
    user_id, channel = params.get("user_id"), params.get("channel", "email")
    if not isinstance(template, str) or not isinstance(entity_key, str):
        raise InvalidInput("send_email job params need 'template' and 'entity_key' strings")
    if user_id is not None and (
        isinstance(user_id, bool) or not isinstance(user_id, int) or user_id <= 0
    ):
        raise InvalidInput("send_email job param 'user_id' must be a positive integer or null")
    if not isinstance(channel, str):
        raise InvalidInput("send_email job param 'channel' must be a string")
    return template, entity_key, user_id, channel


@job_handler("send_email")
def send_email_job(params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """``send_email_async(job_id)``: the Job record names what to send; it is sent inline."""
    template, entity_key, user_id, channel = _params(params)
    check_template(template, entity_key, channel)
    with session_scope() as s:
        # recorded without a delivery message: this job delivers it itself (the sweep is the fallback)
        s.execute(
            insert(Notification)
            .values(
                template=template,
                entity_key=entity_key,
                user_id=user_id,
                channel=channel,
                enqueued_at=func.now(),
            )
            .on_conflict_do_nothing(constraint="uq_notifications_template_entity")
        )
        notification_id = s.execute(
            select(Notification.id).where(
                Notification.template == template,
                Notification.entity_key == entity_key,
                Notification.channel == channel,
            )
        ).scalar_one()
    progress(10)
    status = delivery.deliver(int(notification_id))
    return {"notification_id": notification_id, "status": status}


def notification_of_job(params: dict[str, Any]) -> int | None:
    try:
        template, entity_key, _, channel = _params(params)
    except InvalidInput:
        return None
    with session_scope() as s:
        return s.scalar(
            select(Notification.id).where(
                Notification.template == template,
                Notification.entity_key == entity_key,
                Notification.channel == channel,
            )
        )
