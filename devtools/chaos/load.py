"""A shop's order traffic for a chaos run: products with known stock, customers, orders.

Orders go in the way a shop service sends them: the order and its first job in one
transaction (``jobcore.outbox.enqueue``), so a broker outage leaves outbox rows for the relay
instead of failing the shop. A few cards decline and one product sells out, so compensation
(refunds, voids, releases) runs beside the happy path.
"""

from __future__ import annotations

import dataclasses
import random

from jobcore import outbox
from jobcore.db import session_scope
from shop.models import Inventory, Order, OrderLine, Product, User

PLENTY = 1_000_000


@dataclasses.dataclass
class Load:
    """What a run created: orders in sending order, each product's initial stock, message ids."""

    order_ids: list[int] = dataclasses.field(default_factory=list)
    stock: dict[int, int] = dataclasses.field(default_factory=dict)
    message_ids: list[str] = dataclasses.field(default_factory=list)
    user_ids: list[int] = dataclasses.field(default_factory=list)
    canaries: list[str] = dataclasses.field(default_factory=list)  # customers' e-mails and phones


def catalogue(
    load: Load, rng: random.Random, products: int = 5, scarce: int | None = None
) -> list[int]:
    """Products with plenty of stock, plus one with ``scarce`` units when given (oversell)."""
    with session_scope() as s:
        rows = [
            Product(
                sku=f"CH-{rng.getrandbits(40):x}",
                name=f"Chaos product {i}",
                price_cents=rng.randrange(999, 9999),
            )
            for i in range(products)
        ]
        users = [
            User(
                email=f"chaos{rng.getrandbits(40):x}@shop.example",
                full_name="Chaos Customer",
                phone=f"+4917{rng.randrange(10**8):08d}",
            )
            for _ in range(20)
        ]
        s.add_all([*rows, *users])
        s.flush()
        for i, product in enumerate(rows):
            units = scarce if scarce is not None and i == 0 else PLENTY
            s.add(Inventory(product_id=product.id, available=units))
            load.stock[product.id] = units
        load.user_ids = [u.id for u in users]
        load.canaries = [v for u in users for v in (u.email, u.phone) if v]
        return [p.id for p in rows]


def orders(
    load: Load,
    rng: random.Random,
    count: int,
    products: list[int],
    *,
    declined: float = 0.03,
    send: bool = True,
    quantity: int | None = None,
) -> list[int]:
    """``count`` orders over ``products``, each enqueued with its creation (outbox)."""
    made: list[int] = []
    with session_scope() as s:
        prices = dict(
            s.query(Product.id, Product.price_cents).filter(Product.id.in_(products)).all()
        )
    batch = 50
    for start in range(0, count, batch):
        with session_scope() as s:
            for i in range(start, min(count, start + batch)):
                chosen = rng.sample(products, min(len(products), 1 + (i % 2)))
                lines = [(p, quantity or rng.randint(1, 2)) for p in chosen]
                order = Order(
                    user_id=rng.choice(load.user_ids),
                    total_cents=sum(prices[p] * q for p, q in lines),
                    payment_token="tok_decline" if rng.random() < declined else "tok_visa",
                )
                s.add(order)
                s.flush()
                s.add_all(
                    OrderLine(
                        order_id=order.id, product_id=p, quantity=q, unit_price_cents=prices[p]
                    )
                    for p, q in lines
                )
                made.append(order.id)
                if send:
                    load.message_ids.append(
                        outbox.enqueue(s, "orders.process_order_async", order.id)
                    )
    load.order_ids.extend(made)
    return made
