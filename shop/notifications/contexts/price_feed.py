"""Context of the price-feed alert (administrators): the last known good value and its age."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from jobcore.errors import NotFound
from shop.models import PriceFeed

TEMPLATES: tuple[str, ...] = ("price_feed_alert",)
SAMPLE: dict[str, object] = {
    "feed": {
        "name": "EUR_USD",
        "value": "1.08500000",
        "source": "primary",
        "as_of": "2026-11-23T09:40:00+00:00",
        "age_minutes": 47,
        "incident": 3,
        "last_error": "primary: error: HTTP 503; backup: timeout: ReadTimeout",
        "has_value": True,
    }
}


def load(session: Session, ident: str) -> dict[str, object]:
    feed = session.get(PriceFeed, ident)
    if feed is None:
        raise NotFound(f"price feed {ident!r} does not exist")
    age = None
    if feed.as_of is not None:
        age = int((dt.datetime.now(dt.UTC) - feed.as_of).total_seconds() // 60)
    return {
        "feed": {
            "name": feed.feed,
            "value": None if feed.value is None else str(feed.value),
            "source": feed.source or "-",
            "as_of": feed.as_of.isoformat() if feed.as_of else "-",
            "age_minutes": age if age is not None else "-",
            "incident": feed.incident,
            "last_error": feed.last_error or "-",
            "has_value": feed.value is not None,
        }
    }
