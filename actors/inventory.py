"""Inventory actors: availability now; stock sync and low-stock alerts join in [07]."""

from __future__ import annotations

import dramatiq

from shop.db import session_scope
from shop.errors import PermanentError
from shop.queues import Queue
from shop.services import inventory
from shop.validate import positive_id


@dramatiq.actor(
    actor_name="inventory.update_product_availability",
    queue_name=Queue.INVENTORY.value,
    throws=(PermanentError,),
    max_retries=2,
)
def update_product_availability(product_id: int) -> None:
    """Active exactly when the product has free stock."""
    positive_id(product_id, "product_id")
    with session_scope() as s:
        inventory.update_product_availability(s, product_id)
