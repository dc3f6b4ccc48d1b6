"""``shopjobs health``: probe every component now, store the result, exit 3 when one is down."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from jobcore.cli.output import emit

EXIT_DOWN = 3  # the CLI's "a service could not be reached"


def register(groups: Any) -> None:
    parser = groups.add_parser(
        "health", help="check database, broker, SMTP, storage, providers, scheduler"
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--component", action="append", help="check only this component (repeatable)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import OperationalError

    from jobcore.errors import InvalidInput
    from shop.ops import health

    settings = args.context.settings
    try:
        results = health.probe_all(settings, args.component)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    try:
        health.health_check(settings, results)
    except OperationalError:
        print("warning: the database is unreachable; this check was not stored", file=sys.stderr)
    rows = [
        {
            "component": r["component"],
            "status": "up" if r["up"] else "DOWN",
            "latency_ms": r["latency_ms"],
            "detail": r["detail"],
        }
        for r in results
    ]
    emit(rows, as_json=args.json)
    return 0 if all(r["up"] for r in results) else EXIT_DOWN
