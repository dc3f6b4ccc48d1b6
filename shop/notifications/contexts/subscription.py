"""Subscription notifications: the renewal reminder before the next delivery.

Keys look like ``subscription:{id}#{due_date_iso}`` (one reminder per delivery date); the
date suffix only makes the key unique, the context reads the subscription as it is now.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from jobcore.errors import NotFound
from shop.models import Product, Subscription
from shop.notifications.contexts._common import int_ident
from shop.settings import current as current_settings

TEMPLATES: tuple[str, ...] = ("subscription_renewal_reminder",)
SAMPLE: dict[str, Any] = {
    "subscription": {
        "id": 12,
        "product": "Coffee beans 1 kg",
        "quantity": 1,
        "frequency": "monthly",
        "next_delivery_date": "2026-12-01",
        "manage_url": "https://shop.example.test/subscriptions/12",
    },
}


def load(session: Session, ident: str) -> dict[str, Any]:
    subscription_id = int_ident(ident, "subscription")
    sub = session.get(Subscription, subscription_id)
    if sub is None:
        raise NotFound(f"subscription {subscription_id} does not exist")
    product = session.get(Product, sub.product_id)
    base = current_settings().shop_base_url.rstrip("/")
    return {
        "subscription": {
            "id": sub.id,
            "product": product.name if product else "",
            "quantity": sub.quantity,
            "frequency": sub.frequency,
            "next_delivery_date": sub.next_delivery_date.isoformat(),
            "manage_url": f"{base}/subscriptions/{sub.id}",
        }
    }
