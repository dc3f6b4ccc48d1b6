"""Order notifications: confirmation, shipped (tracking link), cancelled, delivered, payment."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobcore.errors import NotFound
from shop.models import Order, OrderLine, Payment, Product
from shop.notifications.contexts._common import int_ident, money
from shop.settings import current as current_settings

TEMPLATES: tuple[str, ...] = (
    "order_confirmation",
    "order_shipped",
    "order_cancelled",
    "order_delivered",
    "payment_failed",
    "payment_reminder",
)
SAMPLE: dict[str, Any] = {
    "order": {
        "id": 1042,
        "status": "shipped",
        "total": "49.90 EUR",
        "placed_on": "2026-11-20",
        "lines": [{"name": "Linen shirt <blue>", "quantity": 2, "price": "19.95 EUR"}],
        "tracking_number": "TRK123456",
        "tracking_url": "https://shop.example.test/track/TRK123456",
        "cancel_reason": "payment declined",
        "pay_url": "https://shop.example.test/orders/1042/pay",
        "url": "https://shop.example.test/orders/1042",
        "payment_failure": "card_declined",
    },
}


def load(session: Session, ident: str) -> dict[str, Any]:
    order_id = int_ident(ident, "order")
    order = session.get(Order, order_id)
    if order is None:
        raise NotFound(f"order {order_id} does not exist")
    base = current_settings().shop_base_url.rstrip("/")
    lines = [
        {"name": name, "quantity": quantity, "price": money(price, order.currency)}
        for name, quantity, price in session.execute(
            select(Product.name, OrderLine.quantity, OrderLine.unit_price_cents)
            .join(Product, Product.id == OrderLine.product_id)
            .where(OrderLine.order_id == order_id)
            .order_by(OrderLine.id)
        )
    ]
    failure = session.scalar(select(Payment.failure_reason).where(Payment.order_id == order_id))
    tracking = order.tracking_number or ""
    return {
        "order": {
            "id": order.id,
            "status": order.status,
            "total": money(order.total_cents, order.currency),
            "placed_on": order.placed_at.date().isoformat(),
            "lines": lines,
            "tracking_number": tracking,
            "tracking_url": f"{base}/track/{tracking}" if tracking else "",
            "cancel_reason": order.cancel_reason or "",
            "pay_url": f"{base}/orders/{order.id}/pay",
            "url": f"{base}/orders/{order.id}",
            "payment_failure": failure or "",
        }
    }
