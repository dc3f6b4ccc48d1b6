"""Report actors: the daily sales report, product rankings and data exports (``reports`` queue)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import dramatiq

from actors.jobs import run_job_of_message
from jobcore.db import session_scope
from jobcore.errors import PermanentError
from shop.queues import Queue
from shop.reports import exports, sales_report
from shop.integrations import providers
from shop.catalog import rankings


@dramatiq.actor(
    actor_name="reports.generate_daily_sales_report",
    queue_name=Queue.REPORTS.value,
    throws=(PermanentError,),
    max_retries=5,
    time_limit=10 * 60 * 1000,
)
def generate_daily_sales_report(day: str | None = None) -> dict[str, Any]:
    """Report ``day`` (YYYY-MM-DD; the schedule sends none: yesterday in the shop's time zone)."""
    tz = providers.settings().timezone
    if day is None:
        parsed = dt.datetime.now(ZoneInfo(tz)).date() - dt.timedelta(days=1)
    else:
        parsed = sales_report.parse_day(day)
    with session_scope() as s:
        return sales_report.generate_daily_sales_report(s, parsed, tz)


@dramatiq.actor(
    actor_name="reports.update_product_rankings",
    queue_name=Queue.REPORTS.value,
    max_retries=3,
    time_limit=10 * 60 * 1000,
)
def update_product_rankings() -> dict[str, Any]:
    """Rank products by views and purchases over the configured window; the best are featured."""
    with session_scope() as s:
        return rankings.update_product_rankings(s, providers.settings().rankings_window_days)


@dramatiq.actor(
    actor_name="reports.export_data_async",
    queue_name=Queue.REPORTS.value,
    throws=(PermanentError,),
    max_retries=3,
    on_retry_exhausted="jobs.job_retries_exhausted",
    time_limit=60 * 60 * 1000,
)
def export_data_async(job_id: str) -> str:
    """Run an ``export`` Job record: the file goes to storage, the link to the requester."""
    return run_job_of_message(job_id, job_type="export")
