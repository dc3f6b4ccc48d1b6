"""Honour a provider's Retry-After: a 429 is retried after the delay it asks for."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import dramatiq

F = TypeVar("F", bound=Callable[..., Any])


def honour_retry_after(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from shop.integrations.http_clients import RateLimited

        try:
            return fn(*args, **kwargs)
        except RateLimited as exc:
            delay_ms = max(1, int((exc.retry_after_s or 1) * 1000))
            raise dramatiq.Retry(str(exc), delay=delay_ms) from exc

    return wrapper  # type: ignore[return-value]
