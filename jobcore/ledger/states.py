"""The states a job can be in, as the ledger records them, and which of them are final."""

from __future__ import annotations

import enum


class State(enum.StrEnum):
    """A ledger row's state; the values are the strings stored in ``job_ledger.state``.

    ``enqueued -> running -> succeeded``, ``running -> retrying -> running``,
    ``running -> failed``, plus ``dead`` (rejected or parked without running, or lost: its
    message gone from RabbitMQ and its work re-driven, ``jobcore.ledger.lost``), ``skipped``
    (a duplicate delivery of a job already done) and ``cancelled`` (by an operator).
    ``scheduled -> enqueued``: a delayed send held in PostgreSQL until its due time (``eta``);
    the relay that publishes it makes it ``enqueued`` in the same commit.
    """

    SCHEDULED = "scheduled"
    ENQUEUED = "enqueued"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DEAD = "dead"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


#: States of a job that waits to run: not yet delivered to a worker (or due for another run).
WAITING: frozenset[State] = frozenset({State.SCHEDULED, State.ENQUEUED, State.RETRYING})

#: States of a job not finished: waiting, or running now.
OPEN: frozenset[State] = WAITING | {State.RUNNING}

#: States after which the job never runs again (a redelivery of such a job is a duplicate).
FINAL: frozenset[State] = frozenset(
    {State.SUCCEEDED, State.FAILED, State.DEAD, State.SKIPPED, State.CANCELLED}
)


def sql_list(states: frozenset[State] | tuple[State, ...]) -> str:
    """``('a', 'b')`` in the enum's order, for SQL written once at import (never user input)."""
    return "(" + ", ".join(f"'{s}'" for s in State if s in states) + ")"
