"""Stock and availability: conditional updates only, never read-modify-write."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shop.errors import NotFound
from shop.models import Inventory, Product


def update_product_availability(session: Session, product_id: int) -> bool:
    """Make a product active exactly when it has free stock; returns the new flag."""
    available = session.scalar(select(Inventory.available).where(Inventory.product_id == product_id))
    if available is None:
        if session.get(Product, product_id) is None:
            raise NotFound(f"product {product_id} does not exist")
        available = 0
    active = available > 0
    session.execute(
        update(Product).where(Product.id == product_id, Product.is_active.is_not(active)).values(is_active=active)
    )
    return active
