"""What an application adds to the console: the seam its entry point fills.

The core knows the ledger, dead letters, workers and the audit log; it does not know the
application's schedules, queue names, what its business key is called, how long it keeps
jobs, or how to load its actors (needed to publish a replay). ``Extensions`` carries those.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol


@dataclasses.dataclass(frozen=True)
class ScheduleRow:
    name: str
    actor: str
    trigger: str
    tz: str
    paused: bool
    next_fire: dt.datetime | None
    last_fire: dt.datetime | None
    last_outcome: str | None
    misfires: int
    last_message_id: str | None = None


class Schedules(Protocol):
    """The application's periodic jobs, as the console shows and changes them."""

    def listing(self) -> tuple[list[ScheduleRow], dict[str, Any] | None]:
        """Every schedule, and the leader (holder, since, holds_lock) or None."""
        ...

    def pause(self, name: str, operator: str) -> bool:
        """Returns whether anything changed; NotFound for an unknown name. Audited as
        ``operator`` by the application, as its CLI does."""
        ...

    def resume(self, name: str, operator: str) -> bool: ...

    def trigger(self, name: str, operator: str) -> tuple[dt.datetime, str | None]:
        """Fire once now; the fire time and the message id (None when that second had fired)."""
        ...


def _nothing() -> None:
    return None


@dataclasses.dataclass(frozen=True)
class Extensions:
    """Parameters:
    title: shown in the header.
    queues: the application's queue names (the queues page also shows any the ledger knows).
    order_label: what the ledger's ``order_id`` means to the application ("order").
    pipeline_steps: actor names of the order pipeline, in order (the timeline marks them).
    compensation_actors: actors that undo a pipeline (the timeline marks them apart).
    retention_days: state -> days a finished job is kept (the ledger page shows what the
      next prune removes); empty when the application does not prune.
    schedules: the application's schedules, or None (the page then says there are none).
    load_actors: imports the application's broker and actors, so a replay can be published.
    flush: writes what the broker buffered (the ledger rows of published replays).
    secrets: exact values to mask wherever they appear (configured passwords).
    """

    title: str = "jobs"
    queues: Sequence[str] = ()
    order_label: str = "order"
    pipeline_steps: Sequence[str] = ()
    compensation_actors: frozenset[str] = frozenset()
    retention_days: Mapping[str, int] = dataclasses.field(default_factory=dict)
    schedules: Schedules | None = None
    load_actors: Callable[[], None] = _nothing
    flush: Callable[[], None] = _nothing
    secrets: Sequence[str] = ()
