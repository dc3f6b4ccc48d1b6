"""The running job's identity on its log lines, worked out only when a line is written.

``LogContext`` enters a job here when it starts and leaves when it ends; every log line written
in between, by structlog or the standard library (Dramatiq's own loggers), gets message_id,
actor, attempt and the business ids among the job's arguments (``merge``, a structlog
processor). Why lazily: most jobs write no line, and binding the ids through structlog's
contextvars at every start (a ContextVar set per key, then a copy of the whole context to
clear them) was about 12 % of a worker's CPU on no-op jobs. The ids are read from the
arguments at the job's first line, once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, MutableMapping
from contextvars import ContextVar
from typing import Any


class JobContext:
    """Eager fields (cheap, fixed at the start: the attempt must not move when Retries counts
    the next one) and lazy ones (``describe``, called at most once)."""

    __slots__ = ("_describe", "_fields")

    def __init__(self, eager: dict[str, Any], describe: Callable[[], dict[str, Any]]) -> None:
        self._fields = eager
        self._describe: Callable[[], dict[str, Any]] | None = describe

    def fields(self) -> dict[str, Any]:
        describe = self._describe
        if describe is not None:
            self._describe = None
            # a log line must never fail on its context (and cannot log why: it is one)
            with contextlib.suppress(Exception):
                self._fields = {**self._fields, **describe()}
        return self._fields


_CURRENT: ContextVar[JobContext | None] = ContextVar("shopjobs_job_context", default=None)


def enter(eager: dict[str, Any], describe: Callable[[], dict[str, Any]]) -> None:
    """This thread now runs the job ``eager`` names; ``describe`` gives the rest on first use."""
    _CURRENT.set(JobContext(eager, describe))


def leave() -> None:
    _CURRENT.set(None)


def current() -> dict[str, Any]:
    """The fields a log line written now would get (empty outside a job)."""
    context = _CURRENT.get()
    return {} if context is None else dict(context.fields())


def merge(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the running job's fields, under what the line itself says."""
    context = _CURRENT.get()
    if context is not None:
        for key, value in context.fields().items():
            event.setdefault(key, value)
    return event
