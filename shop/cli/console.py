"""``shopjobs console``: the core's web console, filled with the shop's parts.

The shop lends the console its schedules (pause, resume, trigger through
``shop.scheduling.control``), its queue names, what ``order_id`` means, the order pipeline's
steps and its compensation, the ledger's retention policy; the entry point's ``CliContext``
lends the broker (every actor declared), so a replayed dead letter can be published.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from jobcore.cli.context import CliContext
from jobcore.console import cli as console_cli
from jobcore.console.extensions import Extensions, ScheduleRow
from jobcore.redaction import secrets_of
from shop.orders.pipeline import STEPS
from shop.queues import Queue
from shop.scheduling import control
from shop.scheduling.daemon import load_schedule
from shop.scheduling.entries import Entry, load, message_id
from shop.settings import PREFIX, Settings, SettingsError

PIPELINE_STEPS = STEPS  # the order pipeline's steps, in order
COMPENSATION_ACTORS = frozenset({"orders.compensate_order", "orders.cancel_order_async"})
SUCCEEDED_STATES = ("succeeded", "skipped", "cancelled")
FAILED_STATES = ("failed", "dead")


class ShopSchedules:
    """``shopjobs schedules`` for the console: the same control functions, the same entries."""

    def __init__(self, context: CliContext, module: str) -> None:
        self.context, self.module = context, module

    def _entries(self) -> tuple[Entry, ...]:
        try:
            return load(self.module)
        except (ImportError, ValueError, AttributeError) as exc:
            raise SettingsError(
                f"{PREFIX}SCHEDULE_MODULE={self.module!r} is not a usable schedule: {exc}"
            ) from None

    def listing(self) -> tuple[list[ScheduleRow], dict[str, Any] | None]:
        result = control.listing(self._entries())
        rows = [
            ScheduleRow(
                name=r["name"],
                actor=r["actor"],
                trigger=r["trigger"],
                tz=r["tz"],
                paused=r["paused"],
                next_fire=r["next_fire"],
                last_fire=r["last_fire"],
                last_outcome=r["last_outcome"],
                misfires=r["misfires"],
                last_message_id=message_id(r["name"], r["last_fire"]) if r["last_fire"] else None,
            )
            for r in result["schedules"]
        ]
        return rows, result["leader"]

    def pause(self, name: str, operator: str) -> bool:
        return control.set_paused(self._entries(), name, True, operator=operator)

    def resume(self, name: str, operator: str) -> bool:
        return control.set_paused(self._entries(), name, False, operator=operator)

    def trigger(self, name: str, operator: str) -> tuple[dt.datetime, str | None]:
        entries = load_schedule(self.module, self.context.declare(self.module))
        return control.trigger(entries, name, operator=operator)


def extensions(context: CliContext) -> Extensions:
    settings = context.settings
    assert isinstance(settings, Settings)
    retention = {s: settings.ledger_keep_days_succeeded for s in SUCCEEDED_STATES}
    retention.update({s: settings.ledger_keep_days_failed for s in FAILED_STATES})
    return Extensions(
        title="shopjobs",
        queues=[q.value for q in Queue],
        order_label="order",
        pipeline_steps=PIPELINE_STEPS,
        compensation_actors=COMPENSATION_ACTORS,
        retention_days=retention,
        schedules=ShopSchedules(context, settings.schedule_module),
        load_actors=lambda: _declare_all(context),
        flush=lambda: _flush(context),
        secrets=secrets_of(settings),
    )


def _declare_all(context: CliContext) -> None:
    context.broker()  # the entry point declares every actor on the project's broker


def _flush(context: CliContext) -> None:
    context.flush_ledger()


def _make(args: argparse.Namespace) -> Extensions:
    return extensions(args.context)


def register(groups: Any) -> None:
    console_cli.register(groups, _make)
