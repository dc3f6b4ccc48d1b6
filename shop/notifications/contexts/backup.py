"""Context of ``backup:<id>`` notifications: which backup failed verification and why."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from jobcore.errors import InvalidInput, NotFound
from shop.models import Backup

TEMPLATES: tuple[str, ...] = ("backup_verification_failed",)

SAMPLE: dict[str, object] = {
    "backup_id": 42,
    "kind": "daily",
    "period": "2026-11-23",
    "status": "corrupt",
    "size_bytes": 1_482_211,
    "started": "2026-11-23 00:30 UTC",
    "error": "target 1: checksum mismatch (sha256 9f2c41d07a1e..., recorded 0c8e7b1f93aa...)",
}


def load(session: Session, ident: str) -> dict[str, object]:
    if not ident.isdigit():
        raise InvalidInput(f"a backup notification names a backup id, not {ident!r}")
    row = session.get(Backup, int(ident))
    if row is None:
        raise NotFound(f"backup {ident} does not exist")
    return {
        "backup_id": row.id,
        "kind": row.kind,
        "period": row.period_key,
        "status": row.status,
        "size_bytes": row.size_bytes or 0,
        "started": row.started_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "error": row.error or "",
    }
