"""``shopjobs console``: the core's web console, filled with the shop's parts.

The shop lends the console its schedules (pause, resume, trigger through
``shop.scheduling.control``), its queue names, what ``order_id`` means, the order pipeline's
steps and its compensation, the ledger's retention policy, and how to load the actors so a
replayed dead letter can be published (as ``shopjobs dlq replay`` does).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from jobcore.console import cli as console_cli
from jobcore.console.extensions import Extensions, ScheduleRow
from jobcore.redaction import secrets_of
from jobcore.settings import JobSettings
from shop.queues import Queue
from shop.settings import Settings

# the steps of shop.orders.pipeline.order_pipeline, in order (a unit test keeps them equal)
PIPELINE_STEPS = (
    "payments.validate_payment",
    "orders.reserve_inventory",
    "orders.send_to_warehouse",
    "orders.notify_customer",
)
COMPENSATION_ACTORS = frozenset({"orders.compensate_order", "orders.cancel_order_async"})
SUCCEEDED_STATES = ("succeeded", "skipped", "cancelled")
FAILED_STATES = ("failed", "dead")


class ShopSchedules:
    """``shopjobs schedules`` for the console: the same control functions, the same entries."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _entries(self) -> Any:
        from shop.cli.schedules import _entries

        return _entries()

    def listing(self) -> tuple[list[ScheduleRow], dict[str, Any] | None]:
        from shop.scheduling import control
        from shop.scheduling.entries import message_id

        result = control.listing(self._entries())
        rows = [ScheduleRow(
            name=r["name"], actor=r["actor"], trigger=r["trigger"], tz=r["tz"], paused=r["paused"],
            next_fire=r["next_fire"], last_fire=r["last_fire"], last_outcome=r["last_outcome"],
            misfires=r["misfires"],
            last_message_id=message_id(r["name"], r["last_fire"]) if r["last_fire"] else None,
        ) for r in result["schedules"]]
        return rows, result["leader"]

    def pause(self, name: str) -> bool:
        from shop.scheduling import control

        return control.set_paused(self._entries(), name, True)

    def resume(self, name: str) -> bool:
        from shop.scheduling import control

        return control.set_paused(self._entries(), name, False)

    def trigger(self, name: str) -> tuple[dt.datetime, str | None]:
        from shop.scheduling import control
        from shop.scheduling.daemon import load_schedule

        return control.trigger(load_schedule(self.settings.schedule_module), name)


def _load_actors() -> None:
    """What ``shopjobs dlq replay`` imports (jobcore/cli/dlq.py): the broker and every actor, so
    a replay's actor name resolves. The CLI is an entry point; this is its one upward reach."""
    import actors  # noqa: F401
    import broker  # noqa: F401


def _flush() -> None:
    import broker

    broker.flush_ledger()


def extensions(settings: Settings) -> Extensions:
    retention = {s: settings.ledger_keep_days_succeeded for s in SUCCEEDED_STATES}
    retention.update({s: settings.ledger_keep_days_failed for s in FAILED_STATES})
    return Extensions(
        title="shopjobs", queues=[q.value for q in Queue], order_label="order",
        pipeline_steps=PIPELINE_STEPS, compensation_actors=COMPENSATION_ACTORS,
        retention_days=retention, schedules=ShopSchedules(settings), load_actors=_load_actors,
        flush=_flush, secrets=secrets_of(settings),
    )


def _make() -> tuple[JobSettings, Extensions]:
    settings = Settings.from_env()
    return settings, extensions(settings)


def register(groups: Any) -> None:
    console_cli.register(groups, _make)
