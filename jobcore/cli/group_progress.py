"""``shopjobs jobs group <group_id>``: a group's progress, its children by state, its callbacks."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from jobcore import groups
from jobcore.cli.output import emit_record
from jobcore.db import session_scope


def run_group(args: argparse.Namespace) -> int:
    with session_scope() as s:
        record = groups.progress(s, args.group_id)
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
