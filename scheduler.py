"""The scheduler daemon (``python scheduler.py [--tick S]``): sends periodic jobs, never runs them.

Several may run; the one holding the PostgreSQL advisory lock fires. See ``shop.scheduling``.
This entry point builds the process (settings, broker, routing table, the schedule's actors)
and hands the loop what it needs.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from jobcore import logs, outbox
from jobcore.metrics.exposition import serve_process_metrics
from middleware.outbox_relay import build_relay
from shop.scheduling import entries as schedule_entries
from shop.scheduling.daemon import MAX_TICK_S, MIN_TICK_S, Scheduler, load_schedule
from shop.scheduling.entries import Entry
from shop.scheduling.leader import Leadership
from shop.settings import PREFIX, SettingsError

logger = logging.getLogger("shop.scheduling.daemon")


def _tick(raw: str) -> float:
    value = float(raw)
    if not MIN_TICK_S <= value <= MAX_TICK_S:
        raise argparse.ArgumentTypeError(
            f"tick must be between {MIN_TICK_S} and {MAX_TICK_S} seconds"
        )
    return value


def declare_schedule(module_name: str) -> tuple[Entry, ...]:
    """Import the broker and the modules that declare the schedule's actors, then its entries."""
    import dramatiq

    import broker  # noqa: F401  (the global broker and routing table the outbox publishes with)

    for name in schedule_entries.actor_modules(module_name):
        importlib.import_module(name)
    return load_schedule(module_name, set(dramatiq.get_broker().get_declared_actors()))


def main(argv: Sequence[str] | None = None) -> int:
    """Run until SIGTERM; exit 2 on a bad schedule or setting."""
    parser = argparse.ArgumentParser(prog="scheduler.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tick", type=_tick, help=f"seconds between leadership checks ({PREFIX}SCHEDULER_TICK_S)"
    )
    parser.add_argument(
        "--parent-pid", type=int, help="exit when this process is no longer the parent"
    )
    args = parser.parse_args(argv)
    try:
        import broker
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings = broker.settings
    logs.configure(settings.log_format, settings.log_level, settings=settings)
    serve_process_metrics(settings.metrics_bind, settings.scheduler_metrics_port, "scheduler")
    tick_s = args.tick if args.tick is not None else settings.scheduler_tick_s
    if not MIN_TICK_S <= tick_s <= MAX_TICK_S:
        logger.error(
            "%sSCHEDULER_TICK_S must be between %s and %s seconds", PREFIX, MIN_TICK_S, MAX_TICK_S
        )
        return 2
    try:
        entries = declare_schedule(settings.schedule_module)
    except (ImportError, ValueError, LookupError) as exc:
        logger.error("the schedule %s cannot run: %s", settings.schedule_module, exc)
        return 2

    stop = threading.Event()

    def _stop(signum: int, _: FrameType | None) -> None:
        logger.info("scheduler got %s; stopping after this step", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    leadership = Leadership(settings.psycopg_dsn, timeout_s=max(1.0, 2 * tick_s))
    scheduler = Scheduler(entries, leadership, tick_s=tick_s, parent_pid=args.parent_pid)
    logger.info(
        "scheduler ready (pid %d, tick %gs, %d schedules from %s: %s)",
        os.getpid(),
        tick_s,
        len(entries),
        settings.schedule_module,
        ", ".join(e.name for e in entries),
    )
    # the scheduler relays outbox rows too: due delays keep leaving while no worker runs
    # and publishes the scheduler's own fires: they are due at commit, the commit wakes it
    relay = build_relay(settings, broker.broker).start()
    outbox.relay_sends_with(relay)
    try:
        scheduler.run(stop)
    finally:
        outbox.relay_sends_with(None)
        relay.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
