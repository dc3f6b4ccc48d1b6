"""``shopjobs workers``: live worker processes, their queues, what each runs and holds now."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from jobcore.cli.output import emit
from jobcore.db import session_scope
from jobcore.worker_registry import workers


def register(groups: Any) -> None:
    parser = groups.add_parser("workers", help="live worker processes and what they run")
    parser.add_argument(
        "--all",
        action="store_true",
        dest="include_gone",
        help="also processes that stopped beating",
    )
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with session_scope() as s:
        views = workers(s, include_gone=args.include_gone)
    rows = [dataclasses.asdict(v) for v in views]
    if not args.json:
        for row in rows:
            row["state"] = "alive" if row.pop("alive") else "gone"
            row["queues"] = ",".join(row["queues"])
            row["running_actors"] = ",".join(row["running_actors"])
            row["held"] = ",".join(f"{q}={n}" for q, n in sorted(row["held"].items()) if n)
            row["started_at"] = f"{row['started_at']:%Y-%m-%d %H:%M:%S}"
    emit(rows, as_json=args.json)
    return 0 if rows else 1
