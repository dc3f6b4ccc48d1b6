"""What a backup job does end to end: dump, verify by restoring, then apply retention.

A verification that finds damage raises ``BackupCorrupt`` (permanent: a retry would find the
same bytes), after the row is marked ``corrupt`` and the administrators were notified.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from jobcore.errors import PermanentError
from shop.ops import backups
from shop.ops.backup_verify import verify_backup
from shop.settings import Settings


class BackupCorrupt(PermanentError):
    """A stored backup does not match its checksum or does not restore to the dumped row counts."""


def run_scheduled(settings: Settings, kind: str, today: dt.date) -> dict[str, Any]:
    """The daily or weekly backup of ``today`` (once per period), verified, then old ones pruned."""
    return _run(settings, kind, backups.period_of(kind, today), None)


def snapshot_before(
    settings: Settings, label: str, request_key: str | None = None
) -> dict[str, Any]:
    """A verified backup taken right before a risky operation (a migration, a bulk price change).

    ``request_key`` makes a retried request reuse its snapshot; without one, every call makes one.
    """
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return _run(settings, "snapshot", request_key or f"{label}@{stamp}", label)


def _run(settings: Settings, kind: str, period_key: str, label: str | None) -> dict[str, Any]:
    created = backups.create_backup(settings, kind, period_key, label)
    result = created
    if created["status"] == "created":
        result = verify_backup(settings, created["backup_id"])
    retention = backups.apply_retention(settings)
    if result["status"] == "corrupt":
        raise BackupCorrupt(f"backup {result['backup_id']} failed verification: {result['error']}")
    return {**result, "retention_deleted": {k: len(v) for k, v in retention["deleted"].items()}}


def verify(settings: Settings, backup_id: int) -> dict[str, Any]:
    result = verify_backup(settings, backup_id)
    if result["status"] == "corrupt":
        raise BackupCorrupt(f"backup {backup_id} failed verification: {result['error']}")
    return result
