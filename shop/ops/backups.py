"""Backups of the critical data: pg_dump to two storage targets, checksummed, with retention.

A backup is a ``backups`` row keyed by (kind, period): the day of a daily one, the ISO week of
a weekly one, the caller's key of a snapshot. A redelivered or repeated job finds its row done
and returns it; a job that died midway left its row ``running`` or ``failed`` and is redone.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
import time
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from jobcore.db import session_scope
from jobcore.errors import InvalidInput, PermanentError
from shop.models import Backup
from shop.ops import pg_tools
from shop.settings import Settings
from shop.storage import open_storage

logger = logging.getLogger(__name__)

# the shop's own data; the job system's tables (ledger, outbox, fires) are rebuilt, not restored
CRITICAL_TABLES = (
    "users",
    "products",
    "inventory",
    "orders",
    "order_lines",
    "payments",
    "payment_events",
    "refunds",
    "inventory_reservations",
    "subscriptions",
    "subscription_deliveries",
    "carts",
    "cart_items",
    "notifications",
    "email_log",
    "audit_log",
    "jobs",
)
DONE = ("created", "verified", "corrupt", "deleted")


def with_referenced_tables(tables: tuple[str, ...]) -> tuple[str, ...]:
    """``tables`` plus every table their foreign keys reach, so a restore never lacks a target
    (a new column pointing at a new table joins the backup without anyone editing this list)."""
    from jobcore.models import Base

    wanted, todo = set(tables), list(tables)
    while todo:
        table = Base.metadata.tables.get(todo.pop())
        if table is None:
            continue
        for fk in table.foreign_keys:
            target = fk.column.table.name
            if target not in wanted:
                wanted.add(target)
                todo.append(target)
    return tuple(sorted(wanted))


STALE_RUNNING = dt.timedelta(hours=2)
DUMP_TIMEOUT_S = 3000.0


def targets(settings: Settings) -> list[str]:
    return [settings.backup_primary_url, settings.backup_secondary_url]


def period_of(kind: str, today: dt.date) -> str:
    if kind == "daily":
        return today.isoformat()
    if kind == "weekly":
        year, week, _ = today.isocalendar()
        return f"{year}-W{week:02d}"
    raise InvalidInput(f"backup kind must be daily or weekly here, got {kind!r}")


def create_backup(
    settings: Settings, kind: str, period_key: str, label: str | None = None
) -> dict[str, Any]:
    """Dump the critical tables once for (kind, period) and write the file to both targets."""
    backup_id = _claim(kind, period_key, label)
    if backup_id is None:
        with session_scope() as s:
            row = s.scalars(
                select(Backup).where(Backup.kind == kind, Backup.period_key == period_key)
            ).one()
            return describe(row)
    try:
        return _dump_and_store(settings, backup_id, kind, period_key)
    except Exception as exc:
        with session_scope() as s:
            s.execute(
                update(Backup)
                .where(Backup.id == backup_id, Backup.status == "running")
                .values(status="failed", error=str(exc)[:2000], finished_at=_now())
            )
        raise


def _claim(kind: str, period_key: str, label: str | None) -> int | None:
    """The id this job may work on, or None when the (kind, period) backup is done or in hand."""
    with session_scope() as s:
        new = s.execute(
            insert(Backup)
            .values(kind=kind, period_key=period_key, label=label, status="running")
            .on_conflict_do_nothing(index_elements=["kind", "period_key"])
            .returning(Backup.id)
        ).scalar()
        if new is not None:
            return int(new)
        # a previous attempt failed, or its worker died long ago: take the row over
        retaken = s.execute(
            update(Backup)
            .where(
                Backup.kind == kind,
                Backup.period_key == period_key,
                (Backup.status == "failed")
                | ((Backup.status == "running") & (Backup.started_at < _now() - STALE_RUNNING)),
            )
            .values(status="running", started_at=_now(), error=None)
            .returning(Backup.id)
        ).scalar()
        return None if retaken is None else int(retaken)


def _dump_and_store(
    settings: Settings, backup_id: int, kind: str, period_key: str
) -> dict[str, Any]:
    pg_tools.check_versions(settings.pg_bin_dir, settings.backup_dsn)
    tables = pg_tools.existing_tables(settings.backup_dsn, with_referenced_tables(CRITICAL_TABLES))
    key = f"backups/{kind}/{_safe(period_key)}-{backup_id}.dump"
    with tempfile.TemporaryDirectory(prefix="shopjobs-backup-") as tmp:
        path = os.path.join(tmp, "backup.dump")
        started = time.monotonic()
        counts = pg_tools.dump(
            settings.pg_bin_dir, settings.backup_dsn, tables, path, DUMP_TIMEOUT_S
        )
        dump_seconds = time.monotonic() - started
        stored = []
        for url in targets(settings):
            with open(path, "rb") as fh:
                stored.append(
                    open_storage(url).put(key, fh, content_type="application/octet-stream")
                )
    if len({(o.size, o.sha256) for o in stored}) != 1:
        raise PermanentError(f"backup {backup_id}: the two targets received different bytes")
    with session_scope() as s:
        s.execute(
            update(Backup)
            .where(Backup.id == backup_id)
            .values(
                status="created",
                storage_key=key,
                targets=targets(settings),
                size_bytes=stored[0].size,
                sha256=stored[0].sha256,
                table_counts=counts,
                dump_seconds=round(dump_seconds, 3),
                finished_at=_now(),
            )
        )
        row = s.get(Backup, backup_id)
        assert row is not None
        result = describe(row)
    logger.info(
        "backup %r (%s %s): %d bytes, %d tables, %.2f s",
        backup_id,
        kind,
        period_key,
        stored[0].size,
        len(counts),
        dump_seconds,
    )
    return result


def apply_retention(settings: Settings) -> dict[str, Any]:
    """Keep the newest N daily, M weekly and K snapshot backups; delete older ones in both targets."""
    keep = {
        "daily": settings.backup_keep_daily,
        "weekly": settings.backup_keep_weekly,
        "snapshot": settings.backup_keep_snapshots,
    }
    deleted: dict[str, list[int]] = {}
    for kind, count in keep.items():
        with session_scope() as s:
            rows = list(
                s.scalars(
                    select(Backup)
                    .where(
                        Backup.kind == kind,
                        Backup.status.in_(("created", "verified", "corrupt", "failed")),
                    )
                    .order_by(Backup.started_at.desc(), Backup.id.desc())
                )
            )
        good = [r for r in rows if r.status in ("created", "verified")]
        kept = {r.id for r in good[:count]}
        oldest_kept = min((r.started_at for r in good[:count]), default=None)
        # failed or corrupt ones newer than the oldest kept stay for the operator to look at
        doomed = [
            r
            for r in rows
            if r.id not in kept
            and (
                r.status in ("created", "verified")
                or (oldest_kept is not None and r.started_at < oldest_kept)
            )
        ]
        for row in doomed:
            _delete_files(row)
            with session_scope() as s:
                s.execute(
                    update(Backup)
                    .where(Backup.id == row.id, Backup.status != "deleted")
                    .values(status="deleted", deleted_at=_now())
                )
        deleted[kind] = [r.id for r in doomed]
    logger.info("backup retention: deleted %s", {k: len(v) for k, v in deleted.items()})
    return {"kept": keep, "deleted": deleted}


def _delete_files(row: Backup) -> None:
    if not row.storage_key:
        return
    for url in row.targets:
        open_storage(url).delete(row.storage_key)


def describe(row: Backup) -> dict[str, Any]:
    return {
        "backup_id": row.id,
        "kind": row.kind,
        "period": row.period_key,
        "status": row.status,
        "key": row.storage_key,
        "size_bytes": row.size_bytes,
        "sha256": row.sha256,
        "tables": len(row.table_counts or {}),
        "dump_seconds": row.dump_seconds,
        "restore_seconds": row.restore_seconds,
        "error": row.error,
    }


def _safe(period_key: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in period_key)[:120] or "backup"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
