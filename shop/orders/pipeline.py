"""The order flow, in one place: payment validation -> inventory -> fulfilment -> notification.

Each step is its own actor that loads the order by id; a step that fails for good triggers
``orders.compensate_order`` (the Compensation middleware), which undoes the earlier steps in
reverse order. The ledger shows every step under the order's id.
"""

from __future__ import annotations

from dramatiq import pipeline


def order_pipeline(order_id: int) -> pipeline:
    from actors import orders, payments

    def step(actor):  # type: ignore[no-untyped-def]
        return actor.message_with_options(args=(order_id,), pipe_ignore=True)

    return pipeline([
        step(payments.validate_payment),
        step(orders.reserve_inventory),
        step(orders.send_to_warehouse),
        step(orders.notify_customer),
    ])
