"""Stock and availability: conditional updates only, never read-modify-write."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from jobcore.db import affected, session_scope
from jobcore.errors import BusinessOutcome, InvalidInput, NotFound
from shop.catalog import restock
from shop.models import Inventory, InventoryReservation, Order, OrderLine, Product
from shop.orders.lookup import open_order


def update_product_availability(session: Session, product_id: int) -> bool:
    """Make a product active exactly when it has free stock; returns the new flag.

    The flip is a conditional UPDATE, so only the one call that sees a product come back
    tells its wait-list (``restock.on_back_in_stock``); the search column follows the flag.
    """
    available = session.scalar(
        select(Inventory.available).where(Inventory.product_id == product_id)
    )
    if available is None:
        if session.get(Product, product_id) is None:
            raise NotFound(f"product {product_id} does not exist")
        available = 0
    active = available > 0
    flipped = session.execute(
        update(Product)
        .where(Product.id == product_id, Product.is_active.is_not(active))
        .values(is_active=active)
        .returning(Product.id)
    ).first()
    if flipped is not None and active:
        restock.on_back_in_stock(session, product_id)
    restock.refresh_search(session, product_id)
    return active


class OutOfStock(BusinessOutcome):
    """Not enough free stock for an order line: the order cannot be reserved."""


def reserve_order(order_id: int) -> int:
    """Reserve every line of an order, all or nothing; returns the lines newly reserved.

    One reservation per (order, product) by a unique key, and stock taken by a conditional
    UPDATE (``available >= quantity``), in product order so concurrent orders never deadlock.
    A redelivered step finds its reservations and takes nothing twice.
    """
    with session_scope() as s:
        open_order(s, order_id)
        lines = s.execute(
            select(OrderLine.product_id, OrderLine.quantity)
            .where(OrderLine.order_id == order_id)
            .order_by(OrderLine.product_id)
        ).all()
        if not lines:
            raise InvalidInput(f"order {order_id} has no lines")
        newly = 0
        for product_id, quantity in lines:
            inserted = s.execute(
                insert(InventoryReservation)
                .values(order_id=order_id, product_id=product_id, quantity=quantity)
                .on_conflict_do_nothing(constraint="uq_inventory_reservations_order_product")
                .returning(InventoryReservation.id)
            ).first()
            if inserted is None:
                continue
            taken = affected(
                s.execute(
                    update(Inventory)
                    .where(Inventory.product_id == product_id, Inventory.available >= quantity)
                    .values(
                        available=Inventory.available - quantity,
                        reserved=Inventory.reserved + quantity,
                    )
                )
            )
            if taken != 1:
                raise OutOfStock(
                    f"product {product_id}: fewer than {quantity} in stock for order {order_id}"
                )
            newly += 1
        s.execute(
            update(Order)
            .where(Order.id == order_id, Order.status == "paid")
            .values(status="reserved")
        )
        return newly


def release_order(order_id: int) -> int:
    """Give an order's reserved stock back (compensation); returns the lines released, once."""
    with session_scope() as s:
        released = s.execute(
            update(InventoryReservation)
            .where(
                InventoryReservation.order_id == order_id,
                InventoryReservation.released_at.is_(None),
            )
            .values(released_at=func.now())
            .returning(InventoryReservation.product_id, InventoryReservation.quantity)
        ).all()
        for product_id, quantity in sorted(released):
            s.execute(
                update(Inventory)
                .where(Inventory.product_id == product_id)
                .values(
                    available=Inventory.available + quantity, reserved=Inventory.reserved - quantity
                )
            )
        return len(released)
