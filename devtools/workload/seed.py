"""Shop data for the main job: customers, a catalogue with stock, a history of orders."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from jobcore.db import session_scope
from shop.models import Inventory, Order, OrderLine, Product, User


@dataclass
class Seeded:
    user_ids: list[int]
    product_ids: list[int]
    order_ids: list[int]


def seed(rng: random.Random, users: int = 60, products: int = 40, orders: int = 300) -> Seeded:
    """Create the data in bulk, in one transaction."""
    with session_scope() as s:
        user_rows = [
            User(
                email=f"customer{i}@shop.example",
                full_name=f"Customer {i}",
                locale=rng.choice(["en", "en", "fa"]),
                phone=f"+4915{i:08d}",
                notify_sms=rng.random() < 0.3,
            )
            for i in range(users)
        ]
        s.add_all(user_rows)
        product_rows = [
            Product(
                sku=f"SKU-{i:04d}",
                name=f"Product {i}",
                price_cents=rng.randrange(499, 19999, 100),
                low_stock_threshold=5,
            )
            for i in range(products)
        ]
        s.add_all(product_rows)
        s.flush()
        for p in product_rows:
            # a few products sold out, a few nearly so
            stock = 0 if rng.random() < 0.15 else rng.choice([2, 4, 25, 100, 500])
            s.add(Inventory(product_id=p.id, available=stock))
        now = dt.datetime.now(dt.UTC)
        order_rows = []
        for _ in range(orders):
            chosen = rng.sample(product_rows, rng.randint(1, 3))
            lines = [(p, rng.randint(1, 3)) for p in chosen]
            order = Order(
                user_id=rng.choice(user_rows).id,
                total_cents=sum(p.price_cents * q for p, q in lines),
                status=rng.choice(["completed", "completed", "shipped", "cancelled", "pending"]),
                placed_at=now - dt.timedelta(days=rng.randint(0, 6), minutes=rng.randint(0, 1440)),
                payment_token="seed",  # history: these orders are not pushed through the pipeline
            )
            s.add(order)
            s.flush()
            s.add_all(
                OrderLine(
                    order_id=order.id, product_id=p.id, quantity=q, unit_price_cents=p.price_cents
                )
                for p, q in lines
            )
            order_rows.append(order)
        return Seeded(
            [u.id for u in user_rows], [p.id for p in product_rows], [o.id for o in order_rows]
        )
