"""A product coming back: its wait-list is told once each, and search sees it again.

Each restock gets a number (``inventory.restocks``, bumped by the one transaction that flipped
the product to active); a waiting customer is marked with the restock that told them by a
conditional UPDATE, so a redelivered availability job notifies nobody twice.
"""

from __future__ import annotations

import logging

from sqlalchemy import case, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from jobcore.errors import NotFound
from shop.models import Inventory, Product, WaitListEntry
from shop.notifications.notifications import request_notification

log = logging.getLogger(__name__)
TEMPLATE = "back_in_stock"


def join_wait_list(session: Session, product_id: int, user_id: int) -> bool:
    """Put a customer on a product's wait-list; False when they were on it already."""
    if session.get(Product, product_id) is None:
        raise NotFound(f"product {product_id} does not exist")
    row = session.execute(
        insert(WaitListEntry)
        .values(product_id=product_id, user_id=user_id)
        .on_conflict_do_nothing(constraint="uq_wait_list_product_user")
        .returning(WaitListEntry.id)
    ).first()
    return row is not None


def on_back_in_stock(session: Session, product_id: int) -> int:
    """Number this restock and notify everyone still waiting; returns how many were told."""
    restock_no = session.scalar(
        update(Inventory)
        .where(Inventory.product_id == product_id)
        .values(restocks=Inventory.restocks + 1)
        .returning(Inventory.restocks)
    )
    if restock_no is None:  # a product without an inventory row has nothing to come back with
        return 0
    waiting = session.scalars(
        update(WaitListEntry)
        .where(WaitListEntry.product_id == product_id, WaitListEntry.notified_restock.is_(None))
        .values(notified_restock=restock_no)
        .returning(WaitListEntry.user_id)
    ).all()
    for user_id in sorted(waiting):
        # one row per (template, entity, channel): the user is part of the suffix
        request_notification(
            session,
            template=TEMPLATE,
            entity_key=f"product:{product_id}#{restock_no}-{user_id}",
            user_id=user_id,
        )
    log.info(
        "product %r back in stock (restock %r): %r waiting customers notified",
        product_id,
        restock_no,
        len(waiting),
    )
    return len(waiting)


def refresh_search(session: Session, product_id: int) -> None:
    """Index an active product's name and SKU; an inactive one leaves search (NULL vector)."""
    document = func.setweight(func.to_tsvector("simple", Product.name), "A").op("||")(
        func.setweight(func.to_tsvector("simple", Product.sku), "B")
    )
    session.execute(
        update(Product)
        .where(Product.id == product_id)
        .values(search_vector=case((Product.is_active.is_(True), document), else_=None))
    )


def search(session: Session, query: str, limit: int = 20) -> list[int]:
    """Ids of active products matching ``query``, best match first (what the shop's search reads)."""
    tsquery = func.plainto_tsquery("simple", query)
    return list(
        session.scalars(
            select(Product.id)
            .where(Product.search_vector.op("@@")(tsquery))
            .order_by(func.ts_rank(Product.search_vector, tsquery).desc(), Product.id)
            .limit(limit)
        )
    )
