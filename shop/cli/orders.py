"""``shopjobs orders redrive``: send again what orders stranded by lost jobs need next.

The schedule does the same every 5 minutes (``maintenance.redrive_stranded_orders``); an
operator runs it after deleting or purging a queue by hand, or to see (``--dry-run``) which
orders a lost message left behind.
"""

from __future__ import annotations

import argparse
import getpass
import math
from typing import Any

from jobcore.cli.output import emit, emit_record

COLUMNS = (
    "order_id",
    "status",
    "age_s",
    "lost_actors",
    "step",
    "message_id",
    "left_actors",
    "skipped",
)


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise argparse.ArgumentTypeError(f"{value!r}: give 0 or more seconds")
    return seconds


def _count(value: str) -> int:
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: give 1 or more")
    return count


def register(groups: Any) -> None:
    parser = groups.add_parser("orders", help="orders: re-drive the ones whose jobs were lost")
    commands = parser.add_subparsers(dest="command", required=True)
    redrive = commands.add_parser(
        "redrive",
        help="send the next step of orders stranded by lost jobs (in no queue, held by no worker)",
    )
    redrive.add_argument(
        "--older-than",
        type=_seconds,
        dest="older_than_s",
        help="seconds the order and its lost jobs have waited (SHOPJOBS_ORDERS_REDRIVE_AFTER_S, 600)",
    )
    redrive.add_argument(
        "--dry-run", action="store_true", help="list the orders it would re-drive; send nothing"
    )
    redrive.add_argument("--limit", type=_count, default=100, help="orders at most (100)")
    redrive.add_argument("--json", action="store_true")
    redrive.set_defaults(run=run_redrive)


def run_redrive(args: argparse.Namespace) -> int:
    from shop.orders import redrive

    context = args.context
    context.broker()  # every actor declared: the ledger names each send's order and arguments
    settings = context.settings
    older_than_s = (
        args.older_than_s if args.older_than_s is not None else settings.orders_redrive_after_s
    )
    done = redrive.redrive_stranded(
        older_than_s,
        settings.amqp_url,
        limit=args.limit,
        dry_run=args.dry_run,
        operator=None if args.dry_run else getpass.getuser(),
        fifo=not settings.queue_max_priority,
    )
    rows = [r.as_dict() for r in done]
    sent = sum(1 for r in done if r.message_id)
    if args.json:
        emit_record(
            {
                "dry_run": args.dry_run,
                "older_than_s": older_than_s,
                "stranded": len(done),
                "redriven": sent,
                "orders": rows,
            },
            as_json=True,
        )
        return 0
    verb = "would re-drive" if args.dry_run else "re-driven"
    print(
        f"orders stranded by lost jobs for over {older_than_s:g} s: {len(done)}; {verb}: "
        f"{len(done) if args.dry_run else sent}"
    )
    if rows:
        for row in rows:
            row["lost_actors"] = ", ".join(row["lost_actors"])
            row["left_actors"] = ", ".join(row["left_actors"])
        emit(rows, as_json=False, columns=COLUMNS)
    if any(r.left for r in done):
        print(f"left_actors: lost jobs left open, {redrive.NOT_DEDUPED}")
    return 0
