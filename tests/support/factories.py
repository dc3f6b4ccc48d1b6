"""Factories as plain functions: ``make_order(session, **overrides)``."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy.orm import Session

from shop.models import Inventory, Order, OrderLine, Product, User

_seq = itertools.count(1)


def make_user(session: Session, **overrides: Any) -> User:
    n = next(_seq)
    values = {"email": f"customer{n}@example.test", "full_name": f"Customer {n}", **overrides}
    user = User(**values)
    session.add(user)
    session.flush()
    return user


def make_product(session: Session, stock: int = 10, **overrides: Any) -> Product:
    n = next(_seq)
    values = {"sku": f"SKU-{n:05d}", "name": f"Product {n}", "price_cents": 1999, **overrides}
    product = Product(**values)
    session.add(product)
    session.flush()
    session.add(Inventory(product_id=product.id, available=stock))
    session.flush()
    return product


def make_order(
    session: Session,
    user: User | None = None,
    lines: list[tuple[Product, int]] | None = None,
    **overrides: Any,
) -> Order:
    user = user or make_user(session)
    lines = lines or [(make_product(session), 1)]
    total = sum(p.price_cents * q for p, q in lines)
    order = Order(user_id=user.id, total_cents=total, **overrides)
    session.add(order)
    session.flush()
    for product, quantity in lines:
        session.add(
            OrderLine(
                order_id=order.id,
                product_id=product.id,
                quantity=quantity,
                unit_price_cents=product.price_cents,
            )
        )
    session.flush()
    return order
