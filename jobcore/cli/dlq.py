"""``shopjobs dlq list|show|replay|purge``: the dead letters, and putting them back to work."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from jobcore import dead_letters
from jobcore.cli.output import emit, emit_record
from jobcore.db import session_scope
from jobcore.errors import InvalidInput
from jobcore.models import REASONS


def register(groups: Any) -> None:
    parser = groups.add_parser("dlq", help="dead letters: list, show, replay, purge")
    commands = parser.add_subparsers(dest="command", required=True)

    def filters(p: argparse.ArgumentParser) -> None:
        p.add_argument("--queue")
        p.add_argument("--actor")
        p.add_argument("--reason", choices=REASONS)

    listing = commands.add_parser("list", help="dead letters not yet replayed, newest first")
    filters(listing)
    listing.add_argument("--all", action="store_true", help="include replayed ones")
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=run_list)

    show = commands.add_parser("show", help="one dead letter with its traceback and body")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=run_show)

    replay = commands.add_parser("replay", help="publish again under a new message id")
    replay.add_argument("ids", type=int, nargs="*", help="dead letter ids (or use filters / --all)")
    filters(replay)
    replay.add_argument(
        "--all", action="store_true", help="every open dead letter matching the filters"
    )
    replay.add_argument("--to-queue", help="publish to this queue instead of the original one")
    replay.add_argument("--json", action="store_true")
    replay.set_defaults(run=run_replay)

    purge = commands.add_parser("purge", help="delete dead letters for good (asks to confirm)")
    purge.add_argument("ids", type=int, nargs="*")
    filters(purge)
    purge.add_argument("--all", action="store_true")
    purge.add_argument("--yes", action="store_true", help="do not ask")
    purge.set_defaults(run=run_purge)


def _selected(s: Any, args: argparse.Namespace) -> list[Any]:
    if args.ids:
        return [dead_letters.get(s, i) for i in args.ids]
    if not (args.all or args.queue or args.actor or args.reason):
        raise InvalidInput("name dead letter ids, or select with --queue/--actor/--reason or --all")
    return dead_letters.listing(
        s, queue=args.queue, actor=args.actor, reason=args.reason, limit=100_000
    )


def run_list(args: argparse.Namespace) -> int:
    with session_scope() as s:
        rows = [
            dead_letters.as_dict(r)
            for r in dead_letters.listing(
                s,
                queue=args.queue,
                actor=args.actor,
                reason=args.reason,
                include_replayed=args.all,
                limit=args.limit,
            )
        ]
    emit(rows, as_json=args.json)
    return 0


def run_show(args: argparse.Namespace) -> int:
    with session_scope() as s:
        record = dead_letters.as_dict(dead_letters.get(s, args.id), full=True)
    emit_record(record, as_json=args.json)
    return 0


def run_replay(args: argparse.Namespace) -> int:
    args.context.broker()  # every actor declared, so names resolve
    replayed = []
    with session_scope() as s:
        for row in _selected(s, args):
            replayed.append(
                {
                    "dead_letter": row.id,
                    "old_message_id": row.message_id,
                    "new_message_id": dead_letters.replay(
                        s, row, to_queue=args.to_queue, operator=getpass.getuser()
                    ),
                }
            )
    args.context.flush_ledger()
    emit(replayed, as_json=args.json)
    return 0


def run_purge(args: argparse.Namespace) -> int:
    with session_scope() as s:
        rows = _selected(s, args)
        if not rows:
            print("nothing to purge")
            return 0
        if not args.yes:
            if not sys.stdin.isatty():
                raise InvalidInput("purge needs --yes when not run from a terminal")
            answer = input(f"delete {len(rows)} dead letters for good? type 'purge' to confirm: ")
            if answer.strip() != "purge":
                print("not purged")
                return 1
        count = dead_letters.purge(s, [r.id for r in rows], operator=getpass.getuser())
    print(f"purged {count} dead letters (audit log written)")
    return 0
