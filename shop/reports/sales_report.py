"""The daily sales report: computed in SQL, one row per day, e-mailed to the administrators once.

Running a day again recomputes it and replaces the row (``ON CONFLICT (day) DO UPDATE``, with
``version`` counting the runs); the e-mail is keyed by the day, so it is asked for once.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, and_, cast, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from jobcore.errors import InvalidInput
from shop.models import Order, OrderLine, Product, Refund, SalesReport
from shop.notifications.notifications import request_notification

log = logging.getLogger(__name__)
TEMPLATE = "daily_sales_report"
SOLD = ("paid", "reserved", "fulfilling", "completed", "shipped", "delivered")
TOP = 5


def parse_day(value: Any) -> dt.date:
    try:
        day = dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"day must be a date as YYYY-MM-DD, got {value!r}") from None
    if day > dt.date.today() + dt.timedelta(days=1):
        raise InvalidInput(f"day {value!r} is in the future")
    return day


def _bounds(day: dt.date, tz: str) -> tuple[dt.datetime, dt.datetime]:
    """The shop's calendar day, as UTC instants (a DST day has 23 or 25 hours)."""
    zone = ZoneInfo(tz)
    start = dt.datetime.combine(day, dt.time(), zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone)
    return start, end


def generate_daily_sales_report(session: Session, day: dt.date, tz: str) -> dict[str, Any]:
    """Compute ``day`` (in the shop's time zone ``tz``), store it and ask for the admins' e-mail."""
    start, end = _bounds(day, tz)
    in_day = and_(Order.placed_at >= start, Order.placed_at < end, Order.status.in_(SOLD))
    orders, revenue = session.execute(
        select(func.count(), func.coalesce(func.sum(Order.total_cents), 0)).where(in_day)
    ).one()
    refunds, refunded = session.execute(
        select(func.count(), func.coalesce(func.sum(Refund.amount_cents), 0)).where(
            Refund.created_at >= start, Refund.created_at < end, Refund.status != "failed"
        )
    ).one()
    top = session.execute(
        select(
            OrderLine.product_id,
            Product.sku,
            cast(func.sum(OrderLine.quantity), Integer).label("units"),
            func.sum(OrderLine.quantity * OrderLine.unit_price_cents).label("revenue"),
        )
        .join(Order, Order.id == OrderLine.order_id)
        .join(Product, Product.id == OrderLine.product_id)
        .where(in_day)
        .group_by(OrderLine.product_id, Product.sku)
        .order_by(
            func.sum(OrderLine.quantity * OrderLine.unit_price_cents).desc(), OrderLine.product_id
        )
        .limit(TOP)
    ).all()
    values = {
        "orders": orders,
        "revenue_cents": int(revenue),
        "average_order_cents": int(revenue) // orders if orders else 0,
        "refunds": refunds,
        "refunded_cents": int(refunded),
        "top_products": [
            {"product_id": p, "sku": k, "units": u, "revenue_cents": int(r)} for p, k, u, r in top
        ],
    }
    stmt = insert(SalesReport).values(day=day, **values)
    version = session.scalar(
        stmt.on_conflict_do_update(
            index_elements=["day"],
            set_={
                **{k: stmt.excluded[k] for k in values},
                "version": SalesReport.version + 1,
                "computed_at": func.now(),
            },
        ).returning(SalesReport.version)
    )
    emailed = request_notification(
        session, template=TEMPLATE, entity_key=f"sales_report:{day.isoformat()}"
    )
    log.info("sales report %r: %r orders, version %r", day.isoformat(), orders, version)
    return {
        "day": day.isoformat(),
        "orders": orders,
        "revenue_cents": int(revenue),
        "version": version,
        "emailed": emailed is not None,
    }
