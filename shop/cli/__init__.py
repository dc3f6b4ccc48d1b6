"""The operator's CLI: ``shopjobs <group> <command>``; tables for people, ``--json`` for scripts.

Exit codes: 0 done, 1 not found, 2 bad arguments, 3 a service could not be reached.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from shop.cli import backups, health, notifications, schedules, settings_cmd
from jobcore.cli import dlq, jobs, queues, workers

from shop.queues import Queue

EXIT_NOT_FOUND, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shopjobs", description=__doc__.splitlines()[0])
    groups = parser.add_subparsers(dest="group", required=True)
    jobs.register(groups)
    dlq.register(groups)
    queues.register(groups, [queue.value for queue in Queue])
    schedules.register(groups)
    notifications.register(groups)
    settings_cmd.register(groups)
    workers.register(groups)
    health.register(groups)
    backups.register(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from sqlalchemy.exc import OperationalError

    from jobcore.errors import InvalidInput, NotFound
    from shop.settings import SettingsError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except NotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except (InvalidInput, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OperationalError as exc:
        print(f"error: the database could not be reached: {exc.orig}", file=sys.stderr)
        return EXIT_UNREACHABLE


if __name__ == "__main__":
    sys.exit(main())
