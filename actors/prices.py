"""The external price feed, polled on a schedule (``reports`` queue: it may wait on slow sources)."""

from __future__ import annotations

from typing import Any

from broker import routes, settings
from shop.prices import feed as price_feed
from shop.prices.sources import parse_feed


@routes.actor("prices.poll_price_feed")
def poll_price_feed(feed: str | None = None) -> list[dict[str, Any]]:
    """Poll ``feed``, or every configured feed; each keeps its last known good value."""
    feeds = (
        [feed]
        if feed is not None
        else [f.strip() for f in settings.price_feeds.split(",") if f.strip()]
    )
    for name in feeds:
        parse_feed(name)
    return [price_feed.poll_price_feed(name) for name in feeds]
