"""Inventory actors: availability (with the wait-list), the warehouse stock sync, low-stock alerts."""

from __future__ import annotations

import uuid

import dramatiq
from dramatiq.middleware import CurrentMessage

from jobcore.db import session_scope
from jobcore.errors import PermanentError
from shop.queues import Queue
from shop.catalog import inventory, inventory_sync, stock_alerts
from jobcore.validate import positive_id


@dramatiq.actor(
    actor_name="inventory.update_product_availability",
    queue_name=Queue.INVENTORY.value,
    throws=(PermanentError,),
    max_retries=2,
)
def update_product_availability(product_id: int) -> bool:
    """Active exactly when the product has free stock; a comeback tells the wait-list once."""
    positive_id(product_id, "product_id")
    with session_scope() as s:
        return inventory.update_product_availability(s, product_id)


@dramatiq.actor(
    actor_name="inventory.sync_inventory_levels",
    queue_name=Queue.REPORTS.value,  # a long paged pull: never in front of availability updates
    throws=(PermanentError,),
    max_retries=5,
    time_limit=15 * 60 * 1000,
)
def sync_inventory_levels() -> dict[str, object]:
    """Make our stock agree with the warehouse's; the message id keys the run (retries resume it)."""
    message = CurrentMessage.get_current_message()
    run_key = message.message_id if message is not None else f"manual-{uuid.uuid4()}"
    return inventory_sync.sync_inventory_levels(run_key)


@dramatiq.actor(
    actor_name="inventory.check_low_stock_alerts",
    queue_name=Queue.INVENTORY.value,
    max_retries=3,
    time_limit=2 * 60 * 1000,
)
def check_low_stock_alerts() -> dict[str, int]:
    """Alert the administrators once per product per crossing under its threshold."""
    with session_scope() as s:
        return stock_alerts.check_low_stock_alerts(s)
