"""``shopjobs jobs group <group_id>``: a group's progress, its children by state, its callbacks."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sqlalchemy import text

from jobcore.cli.output import emit_record
from jobcore.db import session_scope


def progress(group_id: str) -> dict[str, Any] | None:
    """The barrier's counts and the children's ledger states; None for an unknown group."""
    with session_scope() as s:
        row = s.execute(
            text(
                "SELECT id, total, succeeded, failed, created_at, settled_at, callbacks, fired"
                " FROM job_groups WHERE id = :id"
            ),
            {"id": group_id},
        ).first()
        if row is None:
            return None
        states: dict[str, int] = dict(
            s.execute(
                text(
                    "SELECT state, count(*) FROM job_ledger WHERE group_id = :id"
                    " GROUP BY state ORDER BY state"
                ),
                {"id": group_id},
            ).all()
        )
    return {
        "group_id": row.id,
        "total": row.total,
        "succeeded": row.succeeded,
        "failed": row.failed,
        "pending": row.total - row.succeeded - row.failed,
        "children_by_state": ", ".join(f"{k} {v}" for k, v in states.items()),
        "created_at": row.created_at,
        "settled_at": row.settled_at,
        "callbacks": ", ".join(sorted(row.callbacks)) or "none",
        "fired": ", ".join(f"{k} {v}" for k, v in sorted((row.fired or {}).items())) or "none",
    }


def run_group(args: argparse.Namespace) -> int:
    record = progress(args.group_id)
    if record is None:
        print(f"no group with id {args.group_id}", file=sys.stderr)
        return 1
    emit_record(record, as_json=args.json)
    return 0


def register(commands: Any) -> None:
    group = commands.add_parser("group", help="a group's progress: children by state, callbacks")
    group.add_argument("group_id")
    group.add_argument("--json", action="store_true")
    group.set_defaults(run=run_group)
