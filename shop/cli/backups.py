"""``shopjobs backups``: list backups, verify one by restoring it, take a snapshot now."""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy import select

from jobcore.cli.output import emit, emit_record
from jobcore.db import session_scope
from shop.models import Backup


def register(groups: Any) -> None:
    parser = groups.add_parser("backups", help="list, verify and take database backups")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="backups, newest first")
    listing.add_argument("--all", action="store_true", help="include deleted ones")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=list_backups)
    verify = commands.add_parser(
        "verify", help="check checksums and restore into a scratch database"
    )
    verify.add_argument("backup_id", type=int)
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(run=verify_one)
    snapshot = commands.add_parser(
        "snapshot", help="a verified backup now, before a risky operation"
    )
    snapshot.add_argument("label")
    snapshot.add_argument("--json", action="store_true")
    snapshot.set_defaults(run=take_snapshot)


def list_backups(args: argparse.Namespace) -> int:
    query = select(Backup).order_by(Backup.started_at.desc(), Backup.id.desc())
    if not args.all:
        query = query.where(Backup.status != "deleted")
    with session_scope() as s:
        rows = [
            {
                "id": b.id,
                "kind": b.kind,
                "period": b.period_key,
                "status": b.status,
                "size_bytes": b.size_bytes,
                "started_at": b.started_at,
                "verified_at": b.verified_at,
                "error": b.error,
            }
            for b in s.scalars(query)
        ]
    emit(rows, as_json=args.json)
    return 0


def verify_one(args: argparse.Namespace) -> int:
    from shop.ops.backup_verify import verify_backup

    result = verify_backup(args.context.settings, args.backup_id)
    emit_record(result, as_json=args.json)
    return 0 if result["status"] == "verified" else 1


def take_snapshot(args: argparse.Namespace) -> int:
    from shop.ops.backup_jobs import snapshot_before

    emit_record(snapshot_before(args.context.settings, args.label), as_json=args.json)
    return 0
