"""Backup actors: daily and weekly backups, snapshots before risky operations, verification,
retention and the per-customer data export. Long-running, so their time limit is an hour."""

from __future__ import annotations

from typing import Any

from broker import routes, settings
from jobcore.validate import positive_id, text
from shop.ops import backup_jobs, backups
from shop.reports import customer_export
from shop.storage import open_storage
from shop.subscriptions.subscriptions import local_today


@routes.actor("backups.daily")
def daily_backup() -> dict[str, Any]:
    """Today's backup (shop time zone), verified by a restore; keeps the newest N daily ones."""
    s = settings
    return backup_jobs.run_scheduled(s, "daily", local_today(s.timezone))


@routes.actor("backups.weekly")
def weekly_backup() -> dict[str, Any]:
    s = settings
    return backup_jobs.run_scheduled(s, "weekly", local_today(s.timezone))


@routes.actor("backups.snapshot")
def snapshot_backup(label: str, request_key: str | None = None) -> dict[str, Any]:
    """A verified backup before a risky operation; ``request_key`` makes a repeat reuse it."""
    key = None if request_key is None else text(request_key, "request_key", max_len=120)
    return backup_jobs.snapshot_before(settings, text(label, "label", max_len=200), key)


@routes.actor("backups.verify")
def verify_backup(backup_id: int) -> dict[str, Any]:
    return backup_jobs.verify(settings, positive_id(backup_id, "backup_id"))


@routes.actor("backups.apply_retention")
def apply_retention() -> dict[str, Any]:
    return backups.apply_retention(settings)


@routes.actor("backups.export_customer_data")
def export_customer_data(user_id: int) -> dict[str, Any]:
    """One customer's data as JSON in the shop's storage (``SHOPJOBS_STORAGE_URL``)."""
    storage = open_storage(settings.storage_url)
    return customer_export.export_customer_data(storage, positive_id(user_id, "user_id"))
