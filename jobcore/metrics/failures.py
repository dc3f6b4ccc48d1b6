"""The helper our middleware use to count their own failures.

Dramatiq logs and swallows exceptions raised by ``after_*`` hooks, so a broken store would
fail silently; every hook of a class decorated with ``counts_failures`` adds one to
``shopjobs_middleware_errors_total{middleware,hook}`` before the exception goes on as before.
``SkipMessage`` is control flow (a duplicate, a crash suspect), not a failure, and is not counted.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from dramatiq.middleware import SkipMessage

from jobcore.hooks import COUNTED
from jobcore.metrics.definitions import MIDDLEWARE_ERRORS

T = TypeVar("T", bound=type)
HOOK_PREFIXES = ("before_", "after_")


def count_failure(middleware: str, hook: str) -> None:
    """Count one failure of ``middleware`` in ``hook`` (for code that handles its own errors)."""
    MIDDLEWARE_ERRORS.labels(middleware, hook).inc()


def _counted(middleware: str, hook: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    counter = MIDDLEWARE_ERRORS.labels(middleware, hook)

    @functools.wraps(fn)
    def hook_(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SkipMessage:
            raise
        except BaseException:
            counter.inc()
            raise

    # jobcore.hooks.HookDispatch calls ``fn`` itself and counts: one frame less per hook
    setattr(hook_, COUNTED, (counter, fn))
    return hook_


def counts_failures(cls: T) -> T:
    """Class decorator: every hook the class defines counts the exceptions it raises."""
    for name, attr in list(vars(cls).items()):
        if name.startswith(HOOK_PREFIXES) and callable(attr):
            setattr(cls, name, _counted(cls.__name__, name, attr))
    return cls
