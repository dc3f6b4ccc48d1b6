"""A process-local read cache of feed values, so converting prices does not query per call.

The poll invalidates it when it stores a new value; other processes see the new value within
``TTL_S`` (shorter than the poll interval).
"""

from __future__ import annotations

import decimal
import threading
import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobcore.errors import NotFound
from shop.models import PriceFeed

TTL_S = 60.0
_lock = threading.Lock()
_cache: dict[str, tuple[float, decimal.Decimal]] = {}


def current_value(session: Session, feed: str) -> decimal.Decimal:
    """The feed's last known good value (cached for ``TTL_S``)."""
    now = time.monotonic()
    with _lock:
        hit = _cache.get(feed)
    if hit is not None and now - hit[0] < TTL_S:
        return hit[1]
    value = session.scalar(select(PriceFeed.value).where(PriceFeed.feed == feed))
    if value is None:
        raise NotFound(f"price feed {feed!r} has no value yet")
    with _lock:
        _cache[feed] = (now, value)
    return value


def invalidate(feed: str) -> None:
    with _lock:
        _cache.pop(feed, None)
