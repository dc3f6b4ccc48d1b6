"""The external price feed, polled on a schedule (``reports`` queue: it may wait on slow sources)."""

from __future__ import annotations

from typing import Any

import dramatiq

from jobcore.errors import PermanentError
from shop.queues import Queue
from shop.prices import feed as price_feed
from shop.integrations import providers
from shop.prices.sources import parse_feed


@dramatiq.actor(
    actor_name="prices.poll_price_feed",
    queue_name=Queue.REPORTS.value,
    throws=(PermanentError,),
    max_retries=0,  # the next scheduled poll is the retry; a failed poll keeps the last value
    time_limit=2 * 60 * 1000,
)
def poll_price_feed(feed: str | None = None) -> list[dict[str, Any]]:
    """Poll ``feed``, or every configured feed; each keeps its last known good value."""
    feeds = [feed] if feed is not None else [f.strip() for f in providers.settings().price_feeds.split(",") if f.strip()]
    for name in feeds:
        parse_feed(name)
    return [price_feed.poll_price_feed(name) for name in feeds]
