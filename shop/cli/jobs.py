"""``shopjobs jobs show|list|order``: what happened to a job, or to every job of an order."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

from shop.cli.output import emit, emit_record
from shop.db import session_scope
from shop.errors import InvalidInput
from shop.services import ledger_queries


def _since(value: str) -> dt.datetime:
    """An ISO time, or a relative one like 15m, 2h, 3d."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if value and value[-1] in units and value[:-1].isdigit():
        return dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=int(value[:-1]) * units[value[-1]])
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is neither an ISO time nor like 15m, 2h, 3d") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def register(groups: Any) -> None:
    parser = groups.add_parser("jobs", help="the job ledger")
    commands = parser.add_subparsers(dest="command", required=True)

    show = commands.add_parser("show", help="one job by message id, with its error and traceback")
    show.add_argument("message_id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=run_show)

    listing = commands.add_parser("list", help="jobs, newest first")
    listing.add_argument("--state")
    listing.add_argument("--actor")
    listing.add_argument("--order", type=int, dest="order_id")
    listing.add_argument("--since", type=_since, help="ISO time or 15m, 2h, 3d")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=run_list)

    order = commands.add_parser("order", help="every job of one order, oldest first")
    order.add_argument("order_id", type=int)
    order.add_argument("--json", action="store_true")
    order.set_defaults(run=run_order)


def run_show(args: argparse.Namespace) -> int:
    with session_scope() as s:
        row = ledger_queries.job(s, args.message_id)
        if row is None:
            print(f"no job with message id {args.message_id}", file=sys.stderr)
            return 1
        record = ledger_queries.as_dict(row, full=True)
    if not args.json and record.get("args") is not None:
        record["args"] = json.dumps(record["args"])
    emit_record(record, as_json=args.json)
    return 0


def run_list(args: argparse.Namespace) -> int:
    if args.limit <= 0:
        raise InvalidInput("--limit must be positive")
    with session_scope() as s:
        rows = [ledger_queries.as_dict(r) for r in ledger_queries.jobs(
            s, state=args.state, actor=args.actor, order_id=args.order_id, since=args.since, limit=args.limit)]
    emit(rows, as_json=args.json)
    return 0


def run_order(args: argparse.Namespace) -> int:
    with session_scope() as s:
        rows = [ledger_queries.as_dict(r) for r in ledger_queries.history_of_order(s, args.order_id)]
    if not rows:
        print(f"no jobs recorded for order {args.order_id}", file=sys.stderr)
        return 1
    emit(rows, as_json=args.json)
    return 0
