"""Inventory actors: availability (with the wait-list), the warehouse stock sync, low-stock alerts."""

from __future__ import annotations

import uuid

from dramatiq.middleware import CurrentMessage

from broker import routes
from jobcore.db import session_scope
from jobcore.validate import positive_id
from shop.catalog import inventory, inventory_sync, stock_alerts


@routes.actor("inventory.update_product_availability")
def update_product_availability(product_id: int) -> bool:
    """Active exactly when the product has free stock; a comeback tells the wait-list once."""
    positive_id(product_id, "product_id")
    with session_scope() as s:
        return inventory.update_product_availability(s, product_id)


@routes.actor("inventory.sync_inventory_levels")
def sync_inventory_levels() -> dict[str, object]:
    """Make our stock agree with the warehouse's; the message id keys the run (retries resume it)."""
    message = CurrentMessage.get_current_message()
    run_key = message.message_id if message is not None else f"manual-{uuid.uuid4()}"
    return inventory_sync.sync_inventory_levels(run_key)


@routes.actor("inventory.check_low_stock_alerts")
def check_low_stock_alerts() -> dict[str, int]:
    """Alert the administrators once per product per crossing under its threshold."""
    with session_scope() as s:
        return stock_alerts.check_low_stock_alerts(s)
