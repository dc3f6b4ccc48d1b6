"""Order state changes other than payment and stock: fulfilment, notification, compensation,
cancellation and tracking. Every change is a conditional UPDATE on the expected status."""

from __future__ import annotations

import logging

from sqlalchemy import select, update

from jobcore.db import session_scope
from jobcore.errors import InvalidInput, NotFound
from shop.catalog import inventory
from shop.integrations import providers
from shop.models import Order, OrderLine, Product, User
from shop.notifications.notifications import request_notification
from shop.payments import payments

logger = logging.getLogger(__name__)

CANCELLABLE = ("pending", "paid", "reserved", "fulfilling")


def _order(order_id: int) -> Order:
    with session_scope() as s:
        order = s.get(Order, order_id)
        if order is None:
            raise NotFound(f"order {order_id} does not exist")
        return order


def send_to_warehouse(order_id: int) -> str:
    """Generate the fulfilment instructions and hand them to the warehouse, once per order."""
    order = _order(order_id)
    if order.status == "cancelled":
        raise InvalidInput(f"order {order_id} is cancelled: {order.cancel_reason}")
    if order.fulfilment_ref:
        return order.fulfilment_ref
    with session_scope() as s:
        lines = [
            {"sku": sku, "quantity": quantity}
            for sku, quantity in s.execute(
                select(Product.sku, OrderLine.quantity)
                .join(Product, Product.id == OrderLine.product_id)
                .where(OrderLine.order_id == order_id)
                .order_by(Product.sku)
            )
        ]
    result = providers.warehouse().send_fulfilment(order_id, lines, f"order-{order_id}")
    reference = str(result.get("id") or result.get("fulfilment_id") or f"order-{order_id}")
    with session_scope() as s:
        s.execute(
            update(Order)
            .where(Order.id == order_id, Order.status.in_(("reserved", "paid")))
            .values(status="fulfilling", fulfilment_ref=reference)
        )
    return reference


SMS_TEMPLATES = ("order_confirmation", "order_shipped")  # the customer may ask for these by SMS too


def notify(order_id: int, template: str, channel: str | None = None) -> bool:
    """Queue the order's notification per (template, order, channel); False when none was new.

    Without ``channel``, the customer's preferences decide: e-mail when ``notify_email``, and
    SMS too for confirmation and shipping when ``notify_sms`` and a phone number is on file.
    Only rows are written here: an SMTP outage never blocks or fails an order.
    """
    order = _order(order_id)
    with session_scope() as s:
        user = s.get(User, order.user_id)
        if channel is not None:
            channels = [channel]
        else:
            channels = ["email"] if user is None or user.notify_email else []
            if user is not None and user.notify_sms and user.phone and template in SMS_TEMPLATES:
                channels.append("sms")
        created = [
            request_notification(
                s,
                template=template,
                entity_key=f"order:{order_id}",
                user_id=order.user_id,
                channel=c,
            )
            for c in channels
        ]
    return any(c is not None for c in created)


def complete(order_id: int) -> None:
    notify(order_id, "order_confirmation")
    with session_scope() as s:
        s.execute(
            update(Order)
            .where(Order.id == order_id, Order.status == "fulfilling")
            .values(status="completed")
        )


def compensate(order_id: int, reason: str) -> dict[str, object]:
    """Undo what the pipeline did, in reverse order: stock, then payment, then tell the customer.

    Each undo is idempotent, so a compensation that is itself retried or duplicated does
    each thing once. Returns what was undone, for the ledger and the logs.
    """
    order = _order(order_id)
    if order.status in ("completed", "shipped", "delivered"):
        raise InvalidInput(f"order {order_id} is {order.status}; it cannot be cancelled")
    released = inventory.release_order(order_id)
    payment = payments.give_back_order_payment(order_id, reason)
    with session_scope() as s:
        s.execute(
            update(Order)
            .where(Order.id == order_id, Order.status.in_(CANCELLABLE))
            .values(status="cancelled", cancel_reason=reason[:500])
        )
    notify(order_id, "order_cancelled")
    logger.info("order %r compensated: %d lines released, payment %s", order_id, released, payment)
    return {"released_lines": released, "payment": payment}


def record_tracking(order_id: int, tracking_number: str) -> str:
    """Store the tracking number and the carrier's status; the order counts as shipped."""
    order = _order(order_id)
    if order.status not in ("completed", "shipped", "delivered"):
        raise InvalidInput(f"order {order_id} is {order.status}; only completed orders ship")
    status = providers.carrier().tracking(tracking_number).get("status", "unknown")
    with session_scope() as s:
        s.execute(
            update(Order)
            .where(Order.id == order_id)
            .values(
                tracking_number=tracking_number,
                tracking_status=status,
                status="delivered" if status == "delivered" else "shipped",
            )
        )
    notify(order_id, "order_shipped")
    return status


def check_delivery(order_id: int) -> str:
    order = _order(order_id)
    if order.tracking_number is None:
        raise InvalidInput(f"order {order_id} has no tracking number")
    if order.status == "delivered":
        return "delivered"
    status = providers.carrier().tracking(order.tracking_number).get("status", "unknown")
    with session_scope() as s:
        values: dict[str, object] = {"tracking_status": status}
        if status == "delivered":
            values["status"] = "delivered"
        s.execute(
            update(Order).where(Order.id == order_id, Order.status == "shipped").values(**values)
        )
    if status == "delivered":
        notify(order_id, "order_delivered")
    return status


def pipeline_start(order_id: int) -> bool:
    """Check the order may enter the pipeline; False (nothing to do) when it already has."""
    order = _order(order_id)
    if order.status == "pending":
        with session_scope() as s:
            if not s.execute(
                select(OrderLine.id).where(OrderLine.order_id == order_id).limit(1)
            ).first():
                raise InvalidInput(f"order {order_id} has no lines")
        return True
    if order.status == "cancelled":
        raise InvalidInput(f"order {order_id} is cancelled: {order.cancel_reason}")
    return False
