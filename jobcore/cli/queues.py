"""``shopjobs queues``: ready, delayed and dead counts per queue, stored dead letters, oldest age."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select

from jobcore.cli.output import emit
from jobcore.db import session_scope
from jobcore.ledger.states import State
from jobcore.models import DeadLetter, LedgerEntry


def register(groups: Any, queues: Sequence[str]) -> None:
    """Add ``queues``; ``queues`` are the application's queue names (its ``.DQ``/``.XQ`` too)."""
    parser = groups.add_parser(
        "queues", help="depth, delayed, dead and oldest waiting job per queue"
    )
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(run=run, queue_names=list(queues))


def _depths(url: str, names: list[str]) -> dict[str, int | None]:
    import pika

    out: dict[str, int | None] = {}
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        for name in names:
            channel = conn.channel()
            try:
                out[name] = channel.queue_declare(name, passive=True).method.message_count
                channel.close()
            except pika.exceptions.ChannelClosedByBroker:
                out[name] = None
    finally:
        conn.close()
    return out


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
                    LedgerEntry.state == State.ENQUEUED,
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
