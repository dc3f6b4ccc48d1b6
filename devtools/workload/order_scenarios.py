"""The main job's order traffic: the pipeline with provider faults, declines and sold-out stock,
then refunds, cancellations and tracking on the orders that completed."""

from __future__ import annotations

import random

from sqlalchemy import select

from devtools.workload.seed import Seeded
from devtools.workload.sent import Sent
from jobcore.db import session_scope
from shop.models import Inventory, Order, OrderLine, Payment, Product

ORDERS = 150
DECLINED = 6
SOLD_OUT = 8


def order_pipeline(rng: random.Random, seeded: Seeded) -> Sent:
    """New orders through payment -> stock -> warehouse -> notification."""
    from actors.orders import process_order_async

    sent = Sent("orders: pipeline (5% provider 503s, declined cards, sold-out stock)")
    with session_scope() as s:
        plenty = [
            Product(sku=f"WL-{i}", name=f"Bestseller {i}", price_cents=rng.randrange(999, 9999))
            for i in range(5)
        ]
        sold_out = Product(sku="WL-SOLD-OUT", name="Limited edition", price_cents=49900)
        s.add_all([*plenty, sold_out])
        s.flush()
        s.add_all([Inventory(product_id=p.id, available=10_000) for p in plenty])
        s.add(Inventory(product_id=sold_out.id, available=0))
        order_ids = []
        for i in range(ORDERS + DECLINED + SOLD_OUT):
            product = sold_out if i >= ORDERS + DECLINED else rng.choice(plenty)
            quantity = rng.randint(1, 3)
            order = Order(
                user_id=rng.choice(seeded.user_ids),
                total_cents=product.price_cents * quantity,
                payment_token="tok_decline" if ORDERS <= i < ORDERS + DECLINED else "tok_visa",
            )
            s.add(order)
            s.flush()
            s.add(
                OrderLine(
                    order_id=order.id,
                    product_id=product.id,
                    quantity=quantity,
                    unit_price_cents=product.price_cents,
                )
            )
            order_ids.append(order.id)
    rng.shuffle(order_ids)
    for order_id in order_ids:
        sent.message_ids.append(process_order_async.send(order_id).message_id)
    # a declined card fails validate_payment; a sold-out product fails reserve_inventory
    sent.expected_failures_later = DECLINED + SOLD_OUT
    return sent


def order_follow_ups(rng: random.Random, seeded: Seeded) -> Sent:
    """On completed orders: partial refunds, a cancellation request, tracking numbers."""
    from actors.orders import cancel_order_async, update_order_tracking
    from actors.payments import process_refund_async

    sent = Sent("orders: refunds, cancellations, tracking")
    with session_scope() as s:
        completed = list(
            s.execute(
                select(Order.id, Payment.id, Payment.amount_cents)
                .join(Payment, Payment.order_id == Order.id)
                .where(Order.status == "completed")
                .order_by(Order.id)
            )
        )
    for order_id, payment_id, amount in completed[:15]:
        sent.message_ids.append(
            process_refund_async.send(
                payment_id, max(1, amount // 3), "damaged in transit"
            ).message_id
        )
    for order_id, _, _ in completed[15:45]:
        sent.message_ids.append(
            update_order_tracking.send(order_id, f"TRK{order_id:08d}").message_id
        )
    # asking to cancel an order that already shipped is refused (a permanent error)
    for order_id, _, _ in completed[15:17]:
        sent.message_ids.append(
            cancel_order_async.send(order_id, "customer changed their mind").message_id
        )
        sent.expected_failures += 1
    return sent
