"""Backup actors: daily and weekly backups, snapshots before risky operations, verification,
retention and the per-customer data export. Long-running, so their time limit is an hour."""

from __future__ import annotations

from typing import Any

import dramatiq

import broker as shop_broker
from jobcore.errors import PermanentError
from shop.queues import Queue
from shop.ops import backup_jobs, backups
from shop.reports import customer_export
from shop.subscriptions.subscriptions import local_today
from shop.storage import open_storage
from jobcore.validate import positive_id, text

LONG = {"queue_name": Queue.MAINTENANCE.value, "throws": (PermanentError,), "max_retries": 3,
        "time_limit": 3_600_000}


@dramatiq.actor(actor_name="backups.daily", **LONG)
def daily_backup() -> dict[str, Any]:
    """Today's backup (shop time zone), verified by a restore; keeps the newest N daily ones."""
    s = shop_broker.settings
    return backup_jobs.run_scheduled(s, "daily", local_today(s.timezone))


@dramatiq.actor(actor_name="backups.weekly", **LONG)
def weekly_backup() -> dict[str, Any]:
    s = shop_broker.settings
    return backup_jobs.run_scheduled(s, "weekly", local_today(s.timezone))


@dramatiq.actor(actor_name="backups.snapshot", **LONG)
def snapshot_backup(label: str, request_key: str | None = None) -> dict[str, Any]:
    """A verified backup before a risky operation; ``request_key`` makes a repeat reuse it."""
    key = None if request_key is None else text(request_key, "request_key", max_len=120)
    return backup_jobs.snapshot_before(shop_broker.settings, text(label, "label", max_len=200), key)


@dramatiq.actor(actor_name="backups.verify", **LONG)
def verify_backup(backup_id: int) -> dict[str, Any]:
    return backup_jobs.verify(shop_broker.settings, positive_id(backup_id, "backup_id"))


@dramatiq.actor(actor_name="backups.apply_retention", **LONG)
def apply_retention() -> dict[str, Any]:
    return backups.apply_retention(shop_broker.settings)


@dramatiq.actor(actor_name="backups.export_customer_data", **LONG)
def export_customer_data(user_id: int) -> dict[str, Any]:
    """One customer's data as JSON in the shop's storage (``SHOPJOBS_STORAGE_URL``)."""
    storage = open_storage(shop_broker.settings.storage_url)
    return customer_export.export_customer_data(storage, positive_id(user_id, "user_id"))
