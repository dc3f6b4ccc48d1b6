"""Product rankings: views and purchases over a window give a score, ranks and featured products.

One statement computes every score (a purchase weighs as much as ``PURCHASE_WEIGHT`` views) and
upserts the ranking of every active product; a product no longer active drops out. Running it
twice over the same data gives the same table.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import Integer, cast, delete, func, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from jobcore.db import affected
from shop.models import Order, OrderLine, Product, ProductRanking, ProductView

log = logging.getLogger(__name__)
PURCHASE_WEIGHT = 10
FEATURED = 5
SOLD = ("paid", "reserved", "fulfilling", "completed", "shipped", "delivered")


def update_product_rankings(
    session: Session, window_days: int, featured: int = FEATURED
) -> dict[str, Any]:
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=window_days)
    views = (
        select(ProductView.product_id, func.count().label("n"))
        .where(ProductView.viewed_at >= since)
        .group_by(ProductView.product_id)
        .subquery()
    )
    bought = (
        select(OrderLine.product_id, func.sum(OrderLine.quantity).label("n"))
        .join(Order, Order.id == OrderLine.order_id)
        .where(Order.placed_at >= since, Order.status.in_(SOLD))
        .group_by(OrderLine.product_id)
        .subquery()
    )
    n_views = func.coalesce(views.c.n, 0)
    n_bought = cast(func.coalesce(bought.c.n, 0), Integer)
    score = n_views + n_bought * PURCHASE_WEIGHT
    rank = func.row_number().over(order_by=(score.desc(), Product.id))
    ranked = (
        select(
            Product.id,
            rank.label("rank"),
            score.label("score"),
            n_views.label("views"),
            n_bought.label("purchases"),
        )
        .outerjoin(views, views.c.product_id == Product.id)
        .outerjoin(bought, bought.c.product_id == Product.id)
        .where(Product.is_active.is_(True))
        .subquery()
    )
    rows = select(
        ranked.c.id,
        ranked.c.rank,
        ranked.c.score,
        ranked.c.views,
        ranked.c.purchases,
        (ranked.c.rank <= featured) & (ranked.c.score > 0),
        literal(dt.datetime.now(dt.UTC)),
    )
    stmt = insert(ProductRanking).from_select(
        ["product_id", "rank", "score", "views", "purchases", "is_featured", "computed_at"], rows
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["product_id"],
            set_={
                c: stmt.excluded[c]
                for c in ("rank", "score", "views", "purchases", "is_featured", "computed_at")
            },
        )
    )
    dropped = affected(
        session.execute(
            delete(ProductRanking).where(
                ProductRanking.product_id.not_in(
                    select(Product.id).where(Product.is_active.is_(True))
                )
            )
        )
    )
    ranked_n = session.scalar(select(func.count()).select_from(ProductRanking))
    top = list(
        session.scalars(
            select(ProductRanking.product_id)
            .where(ProductRanking.is_featured)
            .order_by(ProductRanking.rank)
        )
    )
    log.info(
        "rankings: %r products ranked over %r days, %r featured, %r dropped",
        ranked_n,
        window_days,
        len(top),
        dropped,
    )
    return {"ranked": ranked_n, "featured": top, "dropped": dropped}
