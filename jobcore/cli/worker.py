"""``<app> worker``: run the worker group under the supervisor (``jobcore.supervisor``).

Takes Dramatiq's own command line (``dramatiq.cli.make_argument_parser``: processes, threads,
queues, timeouts, pid and log files) with the application's broker module as the default, plus
the restart policy. The application registers it with its module and defaults; the command
never imports the application in this process, only the children do.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Mapping
from typing import Any

from dramatiq import cli

from jobcore import logs
from jobcore.settings import JobSettings
from jobcore.supervisor import RestartPolicy, supervise

_SUPERVISION = (
    "restart_stable_s",
    "restart_backoff_s",
    "restart_backoff_max_s",
    "crash_loop_restarts",
)


def dramatiq_parser(broker: str) -> argparse.ArgumentParser:
    """Dramatiq's parser, with the broker module optional (``broker`` when left out)."""
    parser = cli.make_argument_parser()
    for action in parser._actions:  # argparse has no public way to relax a positional
        if action.dest == "broker":
            action.nargs, action.default = "?", broker
            action.help = f"the broker module, 'module' or 'module:broker' (default: {broker})"
    return parser


def register(
    groups: Any,
    *,
    broker: str,
    settings: Callable[[], JobSettings],
    defaults: Mapping[str, Any] | None = None,
) -> None:
    """Add the ``worker`` command.

    Parameters:
      broker: the module that sets up the application's broker and actors ("actors").
      settings: builds the application's settings (log format and level of the supervisor).
      defaults: Dramatiq option defaults of the application (processes, threads, ...).
    """
    base = dramatiq_parser(broker)
    policy = RestartPolicy()
    parser = groups.add_parser(
        "worker",
        parents=[base],
        add_help=False,
        help="run the worker processes under the supervisor (dead ones are replaced alone)",
        description="Run the worker processes under the supervisor: a dead one is replaced alone.",
        epilog="Exit codes: 0 stopped cleanly, 2 import error at start, 3 broker unreachable at "
        "start, 4 pid file, 5 crash loop (every worker kept dying).",
    )
    group = parser.add_argument_group("supervision")
    group.add_argument(
        "--restart-stable-s",
        type=float,
        default=policy.stable_s,
        help="a process that ran this long before dying restarts without backoff "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--restart-backoff-s",
        type=float,
        default=policy.backoff_min_s,
        help="wait before the second restart in a row; doubles each time (default: %(default)s)",
    )
    group.add_argument(
        "--restart-backoff-max-s",
        type=float,
        default=policy.backoff_max_s,
        help="longest wait between restarts (default: %(default)s)",
    )
    group.add_argument(
        "--crash-loop-restarts",
        type=int,
        default=policy.crash_loop_after,
        help="quick deaths in a row of every worker process that end the group "
        "with exit code 5 (default: %(default)s)",
    )
    parser.set_defaults(**dict(defaults or {}))
    parser.set_defaults(run=lambda args: run(args, base, settings), builds_process=False)


def run(
    args: argparse.Namespace, base: argparse.ArgumentParser, settings: Callable[[], JobSettings]
) -> int:
    config = settings()
    logs.configure(config.log_format, config.log_level, settings=config)
    if args.watch:
        print(
            "error: --watch is not supported under the supervisor; use `dramatiq --watch` "
            "while developing",
            file=sys.stderr,
        )
        return cli.RET_IMPORT
    for path in args.path:
        sys.path.insert(0, path)
    # the children get Dramatiq's own arguments only (they are pickled into each spawn)
    own = {a.dest for a in base._actions if a.dest not in ("help", "version")}
    dramatiq_args = argparse.Namespace(**{name: getattr(args, name) for name in own})
    policy = RestartPolicy(
        stable_s=args.restart_stable_s,
        backoff_min_s=args.restart_backoff_s,
        backoff_max_s=args.restart_backoff_max_s,
        crash_loop_after=args.crash_loop_restarts,
    )
    out = open(args.log_file, "a", encoding="utf-8") if args.log_file else sys.stderr  # noqa: SIM115
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(out)
    try:
        return supervise(dramatiq_args, policy, out)
    finally:
        if out is not sys.stderr:
            out.close()
