"""Report actors: the daily sales report, product rankings and data exports (``reports`` queue)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from actors.jobs import run_job_of_message
from broker import routes, settings
from jobcore.db import session_scope
from shop.catalog import rankings
from shop.reports import exports, sales_report  # noqa: F401  (exports registers the "export" job type)


@routes.actor("reports.generate_daily_sales_report")
def generate_daily_sales_report(day: str | None = None) -> dict[str, Any]:
    """Report ``day`` (YYYY-MM-DD; the schedule sends none: yesterday in the shop's time zone)."""
    tz = settings.timezone
    if day is None:
        parsed = dt.datetime.now(ZoneInfo(tz)).date() - dt.timedelta(days=1)
    else:
        parsed = sales_report.parse_day(day)
    with session_scope() as s:
        return sales_report.generate_daily_sales_report(s, parsed, tz)


@routes.actor("reports.update_product_rankings")
def update_product_rankings() -> dict[str, Any]:
    """Rank products by views and purchases over the configured window; the best are featured."""
    with session_scope() as s:
        return rankings.update_product_rankings(s, settings.rankings_window_days)


@routes.actor("reports.export_data_async")
def export_data_async(job_id: str) -> str:
    """Run an ``export`` Job record: the file goes to storage, the link to the requester."""
    return run_job_of_message(job_id, job_type="export")
