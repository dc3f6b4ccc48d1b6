"""The order flow, in one place: payment validation -> inventory -> fulfilment -> notification.

Each step is its own actor that loads the order by id; a step that fails for good triggers
``orders.compensate_order`` (the Compensation middleware), which undoes the earlier steps in
reverse order. The ledger shows every step under the order's id. Steps are named, not
imported: the routing table (``shop.routes``) says where each goes.
"""

from __future__ import annotations

from dramatiq import pipeline

from jobcore.routing import routes

STEPS = (
    "payments.validate_payment",
    "orders.reserve_inventory",
    "orders.send_to_warehouse",
    "orders.notify_customer",
)


#: the step that moves an order on from each status it can wait in (the status its previous
#: step leaves: validate_payment makes it paid, reserve_inventory reserved, the warehouse fulfilling)
NEXT_STEP = {
    "pending": STEPS[0],
    "paid": STEPS[1],
    "reserved": STEPS[2],
    "fulfilling": STEPS[3],
}


def order_pipeline(order_id: int, first: str = STEPS[0]) -> pipeline:
    """The order's pipeline from step ``first`` on; each step's result is ignored (steps share
    only the order id). A re-drive (``shop.orders.redrive``) starts it where the order stands."""
    table = routes()
    steps = STEPS[STEPS.index(first) :]
    return pipeline([table.message(step, (order_id,), pipe_ignore=True) for step in steps])
