"""Loading an order a pipeline step may still act on."""

from __future__ import annotations

from sqlalchemy.orm import Session

from jobcore.errors import InvalidInput, NotFound
from shop.models import Order


def open_order(session: Session, order_id: int) -> Order:
    """The order, unless it does not exist or was cancelled (both permanent errors)."""
    order = session.get(Order, order_id)
    if order is None:
        raise NotFound(f"order {order_id} does not exist")
    if order.status == "cancelled":
        raise InvalidInput(f"order {order_id} is cancelled: {order.cancel_reason}")
    return order
