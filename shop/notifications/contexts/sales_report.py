"""Context of the daily sales report e-mail (administrators), read from the stored report."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from jobcore.errors import NotFound
from shop.models import SalesReport

TEMPLATES: tuple[str, ...] = ("daily_sales_report",)
SAMPLE: dict[str, object] = {
    "report": {
        "day": "2026-11-22",
        "orders": 118,
        "revenue": "4,913.40",
        "average_order": "41.64",
        "refunds": 3,
        "refunded": "87.50",
        "currency": "EUR",
        "version": 1,
        "top_products": [{"sku": "MUG-BLUE-350", "units": 31, "revenue": "399.90"}],
    }
}


def _money(cents: int) -> str:
    return f"{cents / 100:,.2f}"


def load(session: Session, ident: str) -> dict[str, object]:
    try:
        day = dt.date.fromisoformat(ident)
    except ValueError:
        raise NotFound(f"sales report {ident!r} is not a day") from None
    report = session.get(SalesReport, day)
    if report is None:
        raise NotFound(f"no sales report for {ident}")
    return {
        "report": {
            "day": report.day.isoformat(),
            "orders": report.orders,
            "revenue": _money(report.revenue_cents),
            "average_order": _money(report.average_order_cents),
            "refunds": report.refunds,
            "refunded": _money(report.refunded_cents),
            "currency": "EUR",
            "version": report.version,
            "top_products": [
                {"sku": p["sku"], "units": p["units"], "revenue": _money(p["revenue_cents"])}
                for p in report.top_products
            ],
        }
    }
