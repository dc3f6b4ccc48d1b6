"""``shopjobs queues``: ready, delayed and dead counts per queue, stored dead letters, oldest age."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select

from jobcore import queue_depth, queue_migration
from jobcore.cli.output import emit
from jobcore.db import session_scope
from jobcore.ledger.states import State
from jobcore.models import DeadLetter, LedgerEntry
from jobcore.queue_types import QueueType


def register(groups: Any, queues: Sequence[str]) -> None:
    """Add ``queues``; ``queues`` are the application's queue names (its ``.DQ``/``.XQ`` too)."""
    parser = groups.add_parser(
        "queues", help="depth, delayed, dead and oldest waiting job per queue"
    )
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(run=run, queue_names=list(queues))
    commands = parser.add_subparsers(dest="queues_command", required=False)
    migrate = commands.add_parser(
        "migrate",
        help="move every queue to another type (classic/quorum), keeping its messages; "
        "workers must be stopped",
    )
    migrate.add_argument("--to", choices=["classic", "quorum"], required=True)
    migrate.add_argument("--max-priority", type=int, default=0, help="classic only")
    migrate.add_argument("--delivery-limit", type=int, default=5, help="quorum only")
    migrate.add_argument("--json", action="store_true")
    migrate.set_defaults(run=run_migrate, queue_names=list(queues))


def run_migrate(args: argparse.Namespace) -> int:
    """``shopjobs queues migrate --to quorum``: new queues of the target type, the old drained."""
    try:
        target = QueueType(args.to, args.max_priority, args.delivery_limit)
    except ValueError as exc:
        print(f"shopjobs queues migrate: {exc}", file=sys.stderr)
        return 2
    rows: list[dict[str, Any]] = []
    try:
        queue_migration.migrate(
            args.context.settings.amqp_url,
            list(args.queue_names),
            target,
            report=lambda moved: rows.append(dataclasses.asdict(moved)),
        )
    except queue_migration.MigrationRefused as exc:
        emit(rows, as_json=args.json)
        print(f"shopjobs queues migrate: {exc}", file=sys.stderr)
        return 1
    emit(rows, as_json=args.json)
    print(
        f"every queue is now {target.describe()}: set SHOPJOBS_QUEUE_TYPE={args.to} "
        "for every process before starting the workers",
        file=sys.stderr,
    )
    return 0


def _depths(url: str, names: list[str]) -> dict[str, int | None]:
    """Each queue's ready count, None for a queue not declared."""
    counts = queue_depth.message_counts(url, names)
    return {name: counts.get(name) for name in names}


def run(args: argparse.Namespace) -> int:
    settings = args.context.settings
    names = list(args.queue_names)
    depths = _depths(settings.amqp_url, [n + sfx for n in names for sfx in ("", ".DQ", ".XQ")])
    now = dt.datetime.now(dt.UTC)
    with session_scope() as s:
        oldest = dict(
            s.execute(
                select(LedgerEntry.queue, func.min(LedgerEntry.enqueued_at))
                .where(
                    LedgerEntry.state.in_((State.SCHEDULED, State.ENQUEUED)),
                    (LedgerEntry.eta.is_(None)) | (LedgerEntry.eta <= now),
                )
                .group_by(LedgerEntry.queue)
            ).all()
        )
        stored = dict(
            s.execute(
                select(DeadLetter.queue, func.count())
                .where(DeadLetter.replayed_at.is_(None))
                .group_by(DeadLetter.queue)
            ).all()
        )
    rows = []
    for name in names:
        age = oldest.get(name)
        rows.append(
            {
                "queue": name,
                "ready": depths.get(name),
                "delayed": depths.get(name + ".DQ"),
                "dead_in_xq": depths.get(name + ".XQ"),
                "dead_letters": stored.get(name, 0),
                "oldest_waiting_s": round((now - age).total_seconds(), 1) if age else None,
            }
        )
    emit(rows, as_json=args.json)
    return 0
