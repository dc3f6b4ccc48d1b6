"""``shopjobs schedules list|pause|resume|trigger|set``: the periodic jobs at run time.

Changes take effect at the running scheduler's next tick, without a restart.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import sys
from typing import Any

from jobcore.cli.output import emit
from jobcore.errors import NotFound
from shop.scheduling import control
from shop.scheduling.daemon import load_schedule
from shop.scheduling.entries import Entry
from shop.settings import PREFIX, SettingsError, current


def register(groups: Any) -> None:
    parser = groups.add_parser(
        "schedules", help="periodic jobs: list, pause, resume, trigger, override"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser(
        "list", help="every schedule with next and last fire, and the leader"
    )
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=run_list)

    for name, run, text in (
        ("pause", run_pause, "stop firing a schedule (until resume)"),
        ("resume", run_resume, "fire a paused schedule again, from now on"),
        ("trigger", run_trigger, "fire a schedule once now (also when paused)"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("name")
        command.set_defaults(run=run)

    override = commands.add_parser(
        "set", help="override a schedule's trigger or args (stored, no restart)"
    )
    override.add_argument("name")
    which = override.add_mutually_exclusive_group(required=True)
    which.add_argument("--cron", help='crontab on the entry\'s time zone, e.g. "0 4 * * *"')
    which.add_argument("--every", type=float, metavar="SECONDS", help="an interval instead")
    which.add_argument("--clear", action="store_true", help="back to the declared trigger and args")
    which.add_argument(
        "--args", type=_json_list, help="the actor's positional arguments, a JSON list"
    )
    override.set_defaults(run=run_set)


def _json_list(raw: str) -> list[Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not JSON") from None
    if not isinstance(value, list):
        raise argparse.ArgumentTypeError("expected a JSON list, e.g. [30]")
    return value


def _entries() -> tuple[Entry, ...]:
    from shop.scheduling.entries import load

    module = current().schedule_module
    try:
        return load(module)
    except (ImportError, ValueError, AttributeError) as exc:
        raise SettingsError(
            f"{PREFIX}SCHEDULE_MODULE={module!r} is not a usable schedule: {exc}"
        ) from None


def _time(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds") if value else None


def run_list(args: argparse.Namespace) -> int:
    result = control.listing(_entries())
    rows = [
        {**row, "next_fire": _time(row["next_fire"]), "last_fire": _time(row["last_fire"])}
        for row in result["schedules"]
    ]
    current = result["leader"]
    if current is not None:
        current = {
            **current,
            "since": _time(current["since"]),
            "heartbeat_at": _time(current["heartbeat_at"]),
        }
    if args.json:
        print(json.dumps({"schedules": rows, "leader": current}, indent=2))
        return 0
    emit(
        rows,
        as_json=False,
        columns=(
            "name",
            "trigger",
            "tz",
            "misfire",
            "paused",
            "next_fire",
            "last_fire",
            "last_outcome",
            "misfires",
        ),
    )
    if current is None:
        print("leader: none")
    else:
        state = "holds the lock" if current["holds_lock"] else "stale: lock not held"
        print(f"leader: {current['holder']} since {current['since']} ({state})")
    return 0


def _named(args: argparse.Namespace, action: Any) -> int:
    try:
        return int(action(_entries(), args.name) or 0)
    except NotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def run_pause(args: argparse.Namespace) -> int:
    def pause(entries: tuple[Entry, ...], name: str) -> int:
        changed = control.set_paused(entries, name, True, operator=getpass.getuser())
        print(f"{name}: paused" if changed else f"{name}: already paused")
        return 0

    return _named(args, pause)


def run_resume(args: argparse.Namespace) -> int:
    def resume(entries: tuple[Entry, ...], name: str) -> int:
        changed = control.set_paused(entries, name, False, operator=getpass.getuser())
        print(f"{name}: resumed" if changed else f"{name}: not paused")
        return 0

    return _named(args, resume)


def run_trigger(args: argparse.Namespace) -> int:
    def fire(_: tuple[Entry, ...], name: str) -> int:
        # the broker and the actors too, so the message can be built and published
        module = current().schedule_module
        try:
            entries = load_schedule(module, args.context.declare(module))
        except LookupError as exc:
            raise SettingsError(f"{PREFIX}SCHEDULE_MODULE={module!r} cannot run: {exc}") from None
        fire_time, message_id = control.trigger(entries, name, operator=getpass.getuser())
        if message_id is None:
            print(f"{name}: a fire at {_time(fire_time)} was already sent; nothing sent")
        else:
            print(f"{name}: fired at {_time(fire_time)} as message {message_id}")
        return 0

    return _named(args, fire)


def run_set(args: argparse.Namespace) -> int:
    def override(entries: tuple[Entry, ...], name: str) -> int:
        if args.clear:
            control.clear_override(entries, name)
            print(f"{name}: override cleared")
            return 0
        stored = control.set_override(
            entries, name, cron=args.cron, every_s=args.every, args=args.args
        )
        print(f"{name}: override stored: {json.dumps(stored)}")
        return 0

    return _named(args, override)  # a bad trigger raises InvalidInput: the CLI exits 2
