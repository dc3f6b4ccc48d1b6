"""A customer's own data as one JSON document in storage (a data-access request).

Secrets are left out (token hashes, session keys, payment tokens); everything else the shop
holds about the user is included, grouped by kind. The key is per user and day, so a repeated
job replaces the same object instead of piling up copies.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobcore.db import session_scope
from jobcore.errors import NotFound
from jobcore.models import AuditLog
from shop.models import (
    Cart,
    CartItem,
    Notification,
    Order,
    OrderLine,
    Payment,
    Refund,
    Subscription,
    User,
    UserSession,
)
from shop.storage import Storage

logger = logging.getLogger(__name__)

SECRET_COLUMNS = {"token_hash", "session_key", "payment_token"}


def _row(obj: Any) -> dict[str, Any]:
    return {
        c.key: getattr(obj, c.key)
        for c in obj.__mapper__.column_attrs
        if c.key not in SECRET_COLUMNS
    }


def _rows(s: Session, model: Any, *where: Any) -> list[dict[str, Any]]:
    return [_row(o) for o in s.scalars(select(model).where(*where).order_by(model.id))]


def collect(s: Session, user_id: int) -> dict[str, Any]:
    user = s.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    order_ids = select(Order.id).where(Order.user_id == user_id)
    payment_ids = select(Payment.id).where(Payment.order_id.in_(order_ids))
    cart_ids = select(Cart.id).where(Cart.user_id == user_id)
    return {
        "exported_at": dt.datetime.now(dt.UTC),
        "user": _row(user),
        "orders": _rows(s, Order, Order.user_id == user_id),
        "order_lines": _rows(s, OrderLine, OrderLine.order_id.in_(order_ids)),
        "payments": _rows(s, Payment, Payment.id.in_(payment_ids)),
        "refunds": _rows(s, Refund, Refund.payment_id.in_(payment_ids)),
        "subscriptions": _rows(s, Subscription, Subscription.user_id == user_id),
        "carts": _rows(s, Cart, Cart.user_id == user_id),
        "cart_items": _rows(s, CartItem, CartItem.cart_id.in_(cart_ids)),
        "sessions": _rows(s, UserSession, UserSession.user_id == user_id),
        "notifications": _rows(s, Notification, Notification.user_id == user_id),
    }


def export_customer_data(storage: Storage, user_id: int) -> dict[str, Any]:
    """Write the user's data to ``exports/customers/<id>/<date>.json``; an audit row records it."""
    with session_scope() as s:
        document = collect(s, user_id)
        body = json.dumps(document, default=_json_default, indent=1, sort_keys=True).encode()
        key = f"exports/customers/{user_id}/{dt.date.today().isoformat()}.json"
        stored = storage.put(key, body, content_type="application/json")
        s.add(
            AuditLog(
                actor="backups.export_customer_data",
                action="customer_data_exported",
                subject=f"user:{user_id}",
                details={"key": key, "sha256": stored.sha256, "size": stored.size},
            )
        )
    logger.info("customer data of user %r exported: %d bytes", user_id, stored.size)
    return {
        "user_id": user_id,
        "key": key,
        "size_bytes": stored.size,
        "sha256": stored.sha256,
        "sections": {k: len(v) for k, v in document.items() if isinstance(v, list)},
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return str(value)
