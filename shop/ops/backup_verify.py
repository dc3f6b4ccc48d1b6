"""Proving a backup can be restored: the checksum of every stored copy, then a real restore.

Each target's copy is read back and hashed; each copy is restored into a scratch database
whose row counts must equal the counts recorded from the dump's snapshot. A copy with changed
bytes fails the checksum (and usually the restore); the backup is marked ``corrupt`` and the
administrators are told once per backup.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import tempfile
import time
from typing import Any

from sqlalchemy import update

from jobcore.db import session_scope
from jobcore.errors import InvalidInput, NotFound, PermanentError, TransientError
from shop.models import Backup
from shop.notifications.notifications import request_notification
from shop.ops import pg_tools
from shop.ops.backups import describe
from shop.settings import Settings
from shop.storage import StorageError, open_storage

logger = logging.getLogger(__name__)

ALERT_TEMPLATE = "backup_verification_failed"
RESTORE_TIMEOUT_S = 3000.0


def verify_backup(settings: Settings, backup_id: int) -> dict[str, Any]:
    """Check every copy of a backup; the row ends ``verified`` or ``corrupt`` (with the reasons)."""
    with session_scope() as s:
        row = s.get(Backup, backup_id)
        if row is None:
            raise NotFound(f"backup {backup_id} does not exist")
        if (
            row.status not in ("created", "verified", "corrupt")
            or not row.storage_key
            or not row.sha256
        ):
            raise InvalidInput(
                f"backup {backup_id} is {row.status}; only a written backup can be verified"
            )
        key, expected, counts, urls = (
            row.storage_key,
            row.sha256,
            dict(row.table_counts),
            list(row.targets),
        )
    problems: list[str] = []
    restore_seconds = 0.0
    with tempfile.TemporaryDirectory(prefix="shopjobs-verify-") as tmp:
        for number, url in enumerate(urls, 1):
            path = os.path.join(tmp, f"copy-{number}.dump")
            try:
                digest = _download(url, key, path)
            except StorageError as exc:
                problems.append(f"target {number}: {exc}")
                continue
            if digest != expected:
                problems.append(
                    f"target {number}: checksum mismatch (sha256 {digest[:12]}..., "
                    f"recorded {expected[:12]}...)"
                )
            started = time.monotonic()
            problems.extend(
                f"target {number}: {p}" for p in _restore_and_compare(settings, path, counts)
            )
            restore_seconds = max(restore_seconds, time.monotonic() - started)
    status = "corrupt" if problems else "verified"
    error = "; ".join(problems)[:4000] or None
    with session_scope() as s:
        s.execute(
            update(Backup)
            .where(Backup.id == backup_id)
            .values(
                status=status,
                error=error,
                restore_seconds=round(restore_seconds, 3),
                verified_at=dt.datetime.now(dt.UTC),
            )
        )
        if problems:
            request_notification(
                s, template=ALERT_TEMPLATE, entity_key=f"backup:{backup_id}", user_id=None
            )
        row = s.get(Backup, backup_id)
        assert row is not None
        result = describe(row)
    if problems:
        logger.error("backup %r failed verification: %s", backup_id, error)
    else:
        logger.info(
            "backup %r verified: %d tables restored with equal row counts in %.2f s",
            backup_id,
            len(counts),
            restore_seconds,
        )
    return result


def _download(url: str, key: str, path: str) -> str:
    digest = hashlib.sha256()
    with open_storage(url).open(key) as src, open(path, "wb") as out:
        while chunk := src.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _restore_and_compare(settings: Settings, path: str, expected: dict[str, int]) -> list[str]:
    """Problems found restoring ``path`` into a scratch database (an empty list: it is sound)."""
    with pg_tools.scratch_database(settings.backup_dsn) as scratch:
        try:
            pg_tools.restore(settings.pg_bin_dir, path, scratch, RESTORE_TIMEOUT_S)
        except TransientError:
            raise
        except PermanentError as exc:
            return [f"restore failed: {exc}"]
        restored = pg_tools.restored_counts(scratch, list(expected))
    differing = [
        f"{t}: {restored.get(t, 'missing')} rows restored, {n} dumped"
        for t, n in sorted(expected.items())
        if restored.get(t) != n
    ]
    return [f"row counts differ ({', '.join(differing)})"] if differing else []
