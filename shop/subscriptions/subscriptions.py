"""Subscription renewals: find what is due, renew each once, remind customers a day ahead.

A renewal is one transaction: lock the subscription, claim the (subscription, due date) key,
create the order and enqueue its pipeline through the outbox, advance the date. A second
daily run, a duplicate message or a redelivery after a worker died either waits for the lock
and then finds the date advanced, or finds the key taken; either way it does nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from jobcore import outbox
from jobcore.db import session_scope
from jobcore.errors import NotFound
from shop.models import Inventory, Order, OrderLine, Product, Subscription, SubscriptionDelivery
from shop.notifications.notifications import request_notification
from shop.ops.runs import record_run, utcnow
from shop.subscriptions.dates import next_delivery

logger = logging.getLogger(__name__)

REMINDER_TEMPLATE = "subscription_renewal_reminder"


def local_today(timezone: str) -> dt.date:
    """Today on the shop's wall clock: a subscription is due on the shop's date, not UTC's."""
    return dt.datetime.now(ZoneInfo(timezone)).date()


def process_due(today: dt.date, fan_out: Callable[[Session, int], str]) -> dict[str, Any]:
    """Enqueue one renewal per active subscription due on or before ``today`` (with this run's record)."""
    started = utcnow()
    with session_scope() as s:
        ids = list(
            s.scalars(
                select(Subscription.id)
                .where(Subscription.status == "active", Subscription.next_delivery_date <= today)
                .order_by(Subscription.id)
            )
        )
        for subscription_id in ids:
            fan_out(s, subscription_id)
        stats = {"date": today.isoformat(), "due": len(ids), "enqueued": len(ids)}
        record_run(s, "subscriptions.process_due", started, stats)
    logger.info("subscriptions due on %s: %d renewals enqueued", today, len(ids))
    return stats


def process_single(subscription_id: int, today: dt.date) -> dict[str, Any]:
    """Renew one subscription if it is still active and due; exactly once per due date."""
    with session_scope() as s:
        sub = s.scalars(
            select(Subscription).where(Subscription.id == subscription_id).with_for_update()
        ).first()
        if sub is None:
            raise NotFound(f"subscription {subscription_id} does not exist")
        if sub.status != "active":
            return {"subscription_id": subscription_id, "outcome": f"skipped_{sub.status}"}
        due = sub.next_delivery_date
        if due > today:
            return {
                "subscription_id": subscription_id,
                "outcome": "not_due",
                "next": due.isoformat(),
            }
        claimed = s.execute(
            insert(SubscriptionDelivery)
            .values(subscription_id=subscription_id, due_date=due, outcome="ordered")
            .on_conflict_do_nothing(constraint="uq_subscription_deliveries_due")
            .returning(SubscriptionDelivery.id)
        ).scalar()
        if claimed is None:
            return {
                "subscription_id": subscription_id,
                "outcome": "already_processed",
                "due": due.isoformat(),
            }
        order_id = _order_if_in_stock(s, sub)
        if order_id is None:
            s.execute(
                update(SubscriptionDelivery)
                .where(SubscriptionDelivery.id == claimed)
                .values(outcome="out_of_stock")
            )
        else:
            s.execute(
                update(SubscriptionDelivery)
                .where(SubscriptionDelivery.id == claimed)
                .values(order_id=order_id)
            )
            outbox.enqueue(s, "orders.process_order_async", order_id)
        following = _advance(sub, due, today)
        s.execute(
            update(Subscription)
            .where(Subscription.id == subscription_id, Subscription.next_delivery_date == due)
            .values(next_delivery_date=following, anchor_day=sub.anchor_day or due.day)
        )
    outcome = "ordered" if order_id is not None else "out_of_stock"
    logger.info(
        "subscription %r due %s: %s (order %r), next delivery %s",
        subscription_id,
        due,
        outcome,
        order_id,
        following,
    )
    return {
        "subscription_id": subscription_id,
        "outcome": outcome,
        "order_id": order_id,
        "due": due.isoformat(),
        "next": following.isoformat(),
    }


def _order_if_in_stock(s: Session, sub: Subscription) -> int | None:
    """A pending order for the subscription's product, or None when stock cannot cover it.

    The check is advisory (the pipeline reserves stock for real); it spares the customer an
    order that would be cancelled at once.
    """
    product = s.get(Product, sub.product_id)
    stock = s.get(Inventory, sub.product_id)
    if product is None or not product.is_active or stock is None or stock.available < sub.quantity:
        return None
    order = Order(
        user_id=sub.user_id,
        total_cents=product.price_cents * sub.quantity,
        currency=product.currency,
    )
    s.add(order)
    s.flush()
    s.add(
        OrderLine(
            order_id=order.id,
            product_id=product.id,
            quantity=sub.quantity,
            unit_price_cents=product.price_cents,
        )
    )
    s.flush()
    return order.id


def _advance(sub: Subscription, due: dt.date, today: dt.date) -> dt.date:
    """The first delivery date after ``today``: deliveries missed while the job was down are not sent twice."""
    anchor = sub.anchor_day or due.day
    following = next_delivery(due, sub.frequency, anchor)
    while following <= today:
        following = next_delivery(following, sub.frequency, anchor)
    return following


def send_renewal_reminders(today: dt.date) -> dict[str, Any]:
    """Ask one reminder per subscription renewing tomorrow (the notification row is the key)."""
    started = utcnow()
    tomorrow = today + dt.timedelta(days=1)
    with session_scope() as s:
        due = list(
            s.execute(
                select(Subscription.id, Subscription.user_id)
                .where(Subscription.status == "active", Subscription.next_delivery_date == tomorrow)
                .order_by(Subscription.id)
            )
        )
        requested = 0
        for subscription_id, user_id in due:
            created = request_notification(
                s,
                template=REMINDER_TEMPLATE,
                entity_key=f"subscription:{subscription_id}#{tomorrow.isoformat()}",
                user_id=user_id,
            )
            requested += created is not None
        stats = {
            "renewal_date": tomorrow.isoformat(),
            "due_tomorrow": len(due),
            "requested": requested,
            "already_requested": len(due) - requested,
        }
        record_run(s, "subscriptions.renewal_reminders", started, stats)
    logger.info("renewal reminders for %s: %d requested", tomorrow, requested)
    return stats
