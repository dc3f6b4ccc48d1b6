"""The operator's CLI: ``shopjobs <group> <command>``; tables for people, ``--json`` for scripts.

Exit codes: 0 done, 1 not found, 2 bad arguments, 3 a service could not be reached.
The core's commands (jobs, dead letters, queues, workers) and the shop's (schedules,
notifications, orders, settings, health, backups) share one parser; this entry point builds the
process (by importing ``broker``) and hands each command a ``CliContext``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Collection, Sequence

import dramatiq
from pika.exceptions import AMQPConnectionError, ChannelClosedByBroker
from sqlalchemy.exc import OperationalError

from jobcore import db
from jobcore.cli import dlq, jobs, queues, worker, workers
from jobcore.cli.context import CliContext
from jobcore.errors import InvalidInput, NotFound
from shop.cli import backups, console, health, notifications, orders, schedules, settings_cmd
from shop.integrations import providers
from shop.orders.stranded import stranded_orders
from shop.queues import Queue
from shop.scheduling import entries as schedule_entries
from shop.settings import Settings, SettingsError

EXIT_NOT_FOUND, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shopjobs", description=__doc__.splitlines()[0])
    groups = parser.add_subparsers(dest="group", required=True)
    jobs.register(groups)
    dlq.register(groups)
    queues.register(groups, [queue.value for queue in Queue])
    schedules.register(groups)
    notifications.register(groups)
    orders.register(groups)
    settings_cmd.register(groups)
    workers.register(groups)
    health.register(groups)
    backups.register(groups)
    console.register(groups)
    worker.register(
        groups, broker="actors", settings=Settings.from_env, defaults={"processes": 2, "threads": 8}
    )
    return parser


def _broker() -> dramatiq.Broker:
    import actors  # noqa: F401  (declares every actor on the project's broker)

    return dramatiq.get_broker()


def _declare(schedule_module: str) -> Collection[str]:
    _broker()
    for name in schedule_entries.actor_modules(schedule_module):
        importlib.import_module(name)
    return set(dramatiq.get_broker().get_declared_actors())


def context() -> CliContext:
    """Build the process (``broker.py``: routing table and broker) and read this invocation's
    settings: a command run in a long-lived process (a test) sees the environment of its call."""
    import broker

    settings = Settings.from_env()
    if settings != broker.settings:
        providers.configure(settings)
        db.configure(settings)
    return CliContext(
        settings=settings,
        broker=_broker,
        declare=_declare,
        flush_ledger=broker.flush_ledger,
        stranded_checks={"orders": stranded_orders},
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "builds_process", True):  # the supervisor leaves the app to its children
            args.context = context()
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
    except AMQPConnectionError as exc:
        # a traceback and exit 1 read as "not found"; the operator needs "the broker is down"
        print(f"error: RabbitMQ could not be reached: {exc!r}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except ChannelClosedByBroker as exc:
        # e.g. 403: the login may not read a queue; nothing can be counted or judged lost
        print(f"error: RabbitMQ refused: {exc.reply_code} {exc.reply_text}", file=sys.stderr)
        return EXIT_UNREACHABLE


if __name__ == "__main__":
    sys.exit(main())
