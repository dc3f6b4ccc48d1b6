"""A worker process registered on another host, as its heartbeats would leave it in the registry:
what the lost-job rule reads (the ids it holds, when it last beat)."""

from __future__ import annotations

import datetime as dt

from jobcore.db import session_scope
from jobcore.models.workers import WorkerProcess


def register_elsewhere(
    queue: str, held_ids: list[str] | None = None, beat_s: float | None = None
) -> None:
    """``elsewhere:1`` consuming ``queue``, holding ``held_ids``, its last beat ``beat_s`` ago
    (now, the column's default, when None)."""
    held = held_ids or []
    extra = {}
    if beat_s is not None:
        extra["heartbeat_at"] = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=beat_s)
    with session_scope() as s:
        s.add(
            WorkerProcess(
                name="elsewhere:1",
                host="elsewhere",
                pid=1,
                queues=[queue],
                held={queue: len(held)},
                held_ids=held,
                **extra,
            )
        )
