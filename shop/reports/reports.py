"""Reports computed in SQL over the shop's data (the Job record's ``order_stats`` type)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select

from jobcore.db import session_scope
from jobcore.errors import InvalidInput
from shop.job_records import Progress, job_handler
from shop.models import Order


def _date(params: dict[str, Any], key: str) -> dt.date:
    try:
        return dt.date.fromisoformat(params[key])
    except (KeyError, TypeError, ValueError):
        raise InvalidInput(f"param {key!r} must be a date as YYYY-MM-DD") from None


@job_handler("order_stats")
def order_stats(params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Orders and revenue by status between two dates (inclusive)."""
    start, end = _date(params, "from"), _date(params, "to")
    if end < start:
        raise InvalidInput("param 'to' is before 'from'")
    with session_scope() as s:
        rows = s.execute(
            select(Order.status, func.count(), func.coalesce(func.sum(Order.total_cents), 0))
            .where(func.date(Order.placed_at) >= start, func.date(Order.placed_at) <= end)
            .group_by(Order.status)
            .order_by(Order.status)
        ).all()
    progress(90)
    by_status = {
        status: {"orders": count, "total_cents": int(total)} for status, count, total in rows
    }
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "orders": sum(v["orders"] for v in by_status.values()),
        "by_status": by_status,
    }
