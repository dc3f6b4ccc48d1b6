"""``shopjobs jobs show|list|order|tail|cancel|stranded|group``: what happened to a job or an order;
follow; cancel; what is stranded."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import sys
import threading
import time
from typing import Any

from jobcore.cli import group_progress
from jobcore.cli.output import emit, emit_record
from jobcore.db import read_scope, session_scope
from jobcore.errors import InvalidInput
from jobcore.ledger import queries as ledger_queries
from jobcore.ledger.states import State


def _since(value: str) -> dt.datetime:
    """An ISO time, or a relative one like 15m, 2h, 3d."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if value and value[-1] in units and value[:-1].isdigit():
        return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=int(value[:-1]) * units[value[-1]])
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is neither an ISO time nor like 15m, 2h, 3d"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def register(groups: Any) -> None:
    parser = groups.add_parser("jobs", help="the job ledger")
    commands = parser.add_subparsers(dest="command", required=True)

    show = commands.add_parser("show", help="one job by message id: error, traceback, return value")
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

    tail = commands.add_parser(
        "tail", help="follow job state changes as they happen (Ctrl-C stops)"
    )
    tail.add_argument("--state")
    tail.add_argument("--actor")
    tail.add_argument("--order", type=int, dest="order_id")
    tail.add_argument("--since", type=_since, default="1m", help="start this far back (default 1m)")
    tail.add_argument("--json", action="store_true", help="one JSON object per line")
    tail.add_argument("--max-lines", type=int, help="stop after this many lines")
    tail.add_argument("--for", type=float, dest="for_s", help="stop after this many seconds")
    tail.set_defaults(run=run_tail)

    cancel = commands.add_parser(
        "cancel", help="cancel pending or delayed jobs, by message id or by order"
    )
    cancel.add_argument("message_ids", nargs="*")
    cancel.add_argument(
        "--order", type=int, dest="order_id", help="every pending job of this order"
    )
    cancel.add_argument("--reason", required=True)
    cancel.add_argument("--json", action="store_true")
    cancel.set_defaults(run=run_cancel)

    stranded = commands.add_parser(
        "stranded", help="sends never published, jobs no queue holds, the application's stuck work"
    )
    stranded.add_argument(
        "--older-than",
        type=float,
        default=300.0,
        dest="older_than_s",
        help="seconds past due before something counts as stranded (300)",
    )
    stranded.add_argument("--json", action="store_true")
    stranded.set_defaults(run=run_stranded)
    group_progress.register(commands)


def run_show(args: argparse.Namespace) -> int:
    with read_scope() as s:
        row = ledger_queries.job(s, args.message_id)
        if row is None:
            print(f"no job with message id {args.message_id}", file=sys.stderr)
            return 1
        record = ledger_queries.as_dict(row, full=True)
    if not args.json:
        for name in ("args", "result"):  # JSON values: shown as JSON, not as Python reprs
            if record.get(name) is not None:
                record[name] = json.dumps(record[name])
    emit_record(record, as_json=args.json)
    return 0


def run_list(args: argparse.Namespace) -> int:
    if args.limit <= 0:
        raise InvalidInput("--limit must be positive")
    with read_scope() as s:
        rows = [
            ledger_queries.as_dict(r)
            for r in ledger_queries.jobs(
                s,
                state=args.state,
                actor=args.actor,
                order_id=args.order_id,
                since=args.since,
                limit=args.limit,
            )
        ]
    emit(rows, as_json=args.json)
    return 0


def run_order(args: argparse.Namespace) -> int:
    with read_scope() as s:
        rows = [
            ledger_queries.as_dict(r) for r in ledger_queries.history_of_order(s, args.order_id)
        ]
    if not rows:
        print(f"no jobs recorded for order {args.order_id}", file=sys.stderr)
        return 1
    emit(rows, as_json=args.json)
    return 0


def run_tail(args: argparse.Namespace) -> int:
    """Poll the ledger; a window of overlap catches rows whose batched write landed late."""
    if args.max_lines is not None and args.max_lines <= 0:
        raise InvalidInput("--max-lines must be positive")
    overlap = dt.timedelta(seconds=5)
    cursor, seen, printed = args.since, {}, 0
    deadline = None if args.for_s is None else time.monotonic() + args.for_s
    try:
        while deadline is None or time.monotonic() < deadline:
            with session_scope() as s:
                rows = ledger_queries.changed_after(
                    s, cursor - overlap, state=args.state, actor=args.actor, order_id=args.order_id
                )
                for row in rows:
                    key = (row.message_id, row.state, row.state_changed_at)
                    if key in seen:
                        continue
                    seen[key] = row.state_changed_at
                    _print_change(row, as_json=args.json)
                    printed += 1
                    if args.max_lines is not None and printed >= args.max_lines:
                        return 0
                    cursor = max(cursor, row.state_changed_at)
            for key in [k for k, at in seen.items() if at < cursor - 2 * overlap]:
                del seen[key]
            if len(rows) < 500:
                _idle.wait(TAIL_POLL_S)
    except KeyboardInterrupt:
        pass
    return 0


TAIL_POLL_S = 0.5
_WITH_ERROR = frozenset({State.RETRYING, State.FAILED, State.DEAD, State.CANCELLED})
_idle = threading.Event()


def _print_change(row: Any, *, as_json: bool) -> None:
    record = ledger_queries.as_dict(row)
    if as_json:
        print(json.dumps(record, default=str), flush=True)
        return
    order = f" order={row.order_id}" if row.order_id is not None else ""
    error = f"  {row.error}" if row.error and row.state in _WITH_ERROR else ""
    print(
        f"{row.state_changed_at:%H:%M:%S.%f}"[:-3]
        + f"  {row.state:<9}  {row.actor}  {row.message_id}"
        f"  attempts={row.attempts}{order}{error}",
        flush=True,
    )


def run_cancel(args: argparse.Namespace) -> int:
    from jobcore.cancellations import cancel

    if args.message_ids and args.order_id is not None:
        raise InvalidInput("name message ids or --order, not both")
    with session_scope() as s:
        outcomes = cancel(
            s,
            message_ids=args.message_ids,
            order_id=args.order_id,
            reason=args.reason,
            operator=getpass.getuser(),
        )
    rows = [
        {
            "message_id": o.message_id,
            "actor": o.actor,
            "state": State.CANCELLED if o.cancelled else o.state,
            "cancelled": o.cancelled,
            "note": o.note,
        }
        for o in outcomes
    ]
    if not rows:
        print(f"no jobs recorded for order {args.order_id}", file=sys.stderr)
        return 1
    emit(rows, as_json=args.json, columns=["message_id", "actor", "state", "note"])
    return 0 if any(o.cancelled for o in outcomes) else 1


def run_stranded(args: argparse.Namespace) -> int:
    """Exit 1 when anything is stranded (so a script or a check can act on it), else 0."""
    from jobcore.ledger import lost, stranded

    context = args.context
    settings = context.settings
    with session_scope() as s:
        # a job counts as lost when its message is in no queue and held by no worker
        ids = lost.lost_ids(
            s, settings.amqp_url, args.older_than_s, fifo=not settings.queue_max_priority
        )
        found = stranded.find(s, args.older_than_s, lost=ids, checks=context.stranded_checks)
    rows = [{"kind": kind, **row} for kind, kind_rows in found.kinds.items() for row in kind_rows]
    if args.json:
        emit_record({"counts": found.counts, "stranded": rows}, as_json=True)
    else:
        print("  ".join(f"{kind}: {count}" for kind, count in found.counts.items()))
        if rows:
            emit(
                rows,
                as_json=False,
                columns=[
                    "kind",
                    "message_id",
                    "actor",
                    "queue",
                    "state",
                    "order_id",
                    "status",
                    "age_s",
                ],
            )
    return 1 if found.total else 0
