"""A schedule entry as declared data, the derived message id, and loading the schedule module."""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import uuid
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from shop.scheduling import triggers

MISFIRE_POLICIES = ("skip", "catch_up")
DEFAULT_SCHEDULE_MODULE = "shop.scheduling.schedule"
# fixed forever: changing it would change every fire's message id
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "scheduler.shopjobs")


@dataclasses.dataclass(frozen=True)
class Entry:
    """One periodic job: which actor, when (cron or interval, in a time zone), what if missed.

    Parameters:
      name: stable, unique; part of every fire's message id.
      actor: the Dramatiq ``actor_name`` to send to.
      cron: crontab on ``tz``'s wall clock (5 fields, or 6 with seconds first; day names).
      every_s: or an interval in seconds, on absolute time (aligned to 2000-01-01 UTC).
      tz: IANA time zone of the cron fields.
      args: the actor's positional arguments (primitives only).
      misfire: ``skip`` a fire found late, or ``catch_up``: send the newest late fire once
        (older late ones coalesce into it) when it is at most ``grace_s`` late.
      grace_s: how late a ``catch_up`` fire may still be sent.
    """

    name: str
    actor: str
    cron: str | None = None
    every_s: float | None = None
    tz: str = "UTC"
    args: tuple[Any, ...] = ()
    misfire: str = "skip"
    grace_s: float = 0.0
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 120 or any(c.isspace() for c in self.name):
            raise ValueError(f"schedule name {self.name!r}: 1-120 characters without spaces")
        if self.misfire not in MISFIRE_POLICIES:
            raise ValueError(f"{self.name}: misfire must be one of {MISFIRE_POLICIES}")
        if self.grace_s < 0:
            raise ValueError(f"{self.name}: grace_s must not be negative")
        try:
            triggers.build_trigger(self.trigger_spec, self.tz)
        except (ValueError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(f"{self.name}: {exc}") from None

    @property
    def trigger_spec(self) -> dict[str, Any]:
        if (self.cron is None) == (self.every_s is None):
            raise ValueError("give exactly one of cron= or every_s=")
        return {"cron": self.cron} if self.cron is not None else {"every_s": self.every_s}


def message_id(name: str, fire_time: dt.datetime) -> str:
    """The one message id of a logical fire: uuid5 of ``name@fire time`` (the time in UTC).

    UTC, so that processes that see the same instant in different zones agree.
    """
    if fire_time.tzinfo is None:
        raise ValueError("fire_time must be timezone-aware")
    stamp = fire_time.astimezone(dt.UTC).isoformat()
    return str(uuid.uuid5(NAMESPACE, f"{name}@{stamp}"))


def zone(entry: Entry) -> ZoneInfo:
    return ZoneInfo(entry.tz)


def load(module_name: str = DEFAULT_SCHEDULE_MODULE) -> tuple[Entry, ...]:
    """The ``ENTRIES`` of a schedule module, checked for unique names."""
    module = importlib.import_module(module_name)
    entries = tuple(module.ENTRIES)
    check_unique(entries)
    return entries


def actor_modules(module_name: str = DEFAULT_SCHEDULE_MODULE) -> tuple[str, ...]:
    """Modules that declare the schedule's actors (a schedule module may name its own)."""
    module = importlib.import_module(module_name)
    return tuple(getattr(module, "ACTOR_MODULES", ("actors",)))


def check_unique(entries: Sequence[Entry]) -> None:
    names = [e.name for e in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"schedule names must be unique; repeated: {', '.join(duplicates)}")


def find(entries: Sequence[Entry], name: str) -> Entry | None:
    return next((e for e in entries if e.name == name), None)
