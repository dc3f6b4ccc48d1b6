"""Low-stock alerts: one per product per crossing under its threshold, to the administrators.

``inventory.low_stock_alerted`` is set by a conditional UPDATE that also numbers the crossing,
so two checks running at once alert once; it is cleared when stock is back at or above the
threshold, and the next dip is a new crossing with its own notification key.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import update
from sqlalchemy.orm import Session

from jobcore.db import affected
from shop.models import Inventory, Product
from shop.notifications.notifications import request_notification

log = logging.getLogger(__name__)
TEMPLATE = "low_stock"


def reset_restocked(session: Session, product_ids: Sequence[int] | None = None) -> int:
    """Clear the flag of products back at or above their threshold; returns how many."""
    stmt = (
        update(Inventory)
        .where(
            Inventory.low_stock_alerted.is_(True),
            Inventory.product_id == Product.id,
            Inventory.available >= Product.low_stock_threshold,
        )
        .values(low_stock_alerted=False)
    )
    if product_ids is not None:
        if not product_ids:
            return 0
        stmt = stmt.where(Inventory.product_id.in_(list(product_ids)))
    return affected(session.execute(stmt))


def check_low_stock_alerts(session: Session) -> dict[str, int]:
    """Reset restocked products, then alert once for each product that newly fell under."""
    reset = reset_restocked(session)
    crossed = session.execute(
        update(Inventory)
        .where(
            Inventory.low_stock_alerted.is_(False),
            Inventory.product_id == Product.id,
            Inventory.available < Product.low_stock_threshold,
        )
        .values(low_stock_alerted=True, low_stock_crossings=Inventory.low_stock_crossings + 1)
        .returning(Inventory.product_id, Inventory.low_stock_crossings)
    ).all()
    for product_id, crossing in sorted(crossed):
        request_notification(
            session, template=TEMPLATE, entity_key=f"product:{product_id}#{crossing}"
        )
    if crossed:
        log.info(
            "low stock: %r products crossed under their threshold, %r restocked",
            len(crossed),
            reset,
        )
    return {"alerted": len(crossed), "reset": reset}
