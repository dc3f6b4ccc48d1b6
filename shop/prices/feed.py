"""Poll a price feed: sources in fallback order, the last known good value kept with its age.

The first source with a fresh, well-formed quote wins; its value replaces the stored one
(``version`` moves and the read cache is invalidated when the value changed). When every source
fails, the last value stays, and the administrators get one alert per incident: a conditional
UPDATE opens the incident (``alerting``), and the next good value closes it.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.dialects.postgresql import insert

from jobcore.db import session_scope
from shop.models import PriceFeed
from shop.notifications.notifications import request_notification
from shop.prices import cache as price_cache
from shop.prices.metrics import FEED_AGE, FETCHES
from shop.prices.sources import (
    Quote,
    SourceFailed,
    fetch,
    parse_feed,
    parse_sources,
    policy_for,
)
from shop.settings import current as current_settings

log = logging.getLogger(__name__)
TEMPLATE = "price_feed_alert"


def poll_price_feed(feed: str) -> dict[str, Any]:
    """Poll every source until one answers well; returns the outcome and the value's age."""
    parse_feed(feed)
    settings = current_settings()
    max_age = settings.price_feed_max_age_s
    failures: list[str] = []
    sources = parse_sources(settings.price_feed_sources)
    policy = policy_for(settings.outbound_allowed_hosts, sources)
    for name, url in sources:
        try:
            quote = fetch(url, feed, max_age, settings.http_timeout_s, policy)
        except SourceFailed as exc:
            FETCHES.labels(feed, name, exc.outcome).inc()
            failures.append(f"{name}: {exc}")
            log.warning("price feed %r: source %r failed (%s)", feed, name, exc)
            continue
        FETCHES.labels(feed, name, "ok").inc()
        return _store(feed, name, quote, failures)
    return _all_failed(feed, failures, max_age)


def _store(feed: str, source: str, quote: Quote, failures: list[str]) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    with session_scope() as s:
        s.execute(
            insert(PriceFeed).values(feed=feed).on_conflict_do_nothing(index_elements=["feed"])
        )
        previous = s.scalar(select(PriceFeed.value).where(PriceFeed.feed == feed).with_for_update())
        version = s.scalar(
            update(PriceFeed)
            .where(PriceFeed.feed == feed)
            .values(
                value=quote.value,
                source=source,
                as_of=quote.as_of,
                fetched_at=now,
                checked_at=now,
                alerting=False,
                last_error="; ".join(failures) or None,
                version=case(
                    (PriceFeed.value.is_distinct_from(quote.value), PriceFeed.version + 1),
                    else_=PriceFeed.version,
                ),
            )
            .returning(PriceFeed.version)
        )
    if previous != quote.value:
        price_cache.invalidate(feed)
    age = max(0.0, (now - quote.as_of).total_seconds())
    FEED_AGE.labels(feed).set(age)
    log.info(
        "price feed %r: %s from %r (version %r, fallbacks %r)",
        feed,
        quote.value,
        source,
        version,
        len(failures),
    )
    return {
        "feed": feed,
        "outcome": "ok",
        "source": source,
        "value": str(quote.value),
        "age_s": round(age, 3),
        "fallbacks": len(failures),
    }


def _all_failed(feed: str, failures: list[str], max_age: float) -> dict[str, Any]:
    """Keep the last known good value, and open an incident (one alert) if none is open."""
    now = dt.datetime.now(dt.UTC)
    error = "; ".join(failures)
    with session_scope() as s:
        s.execute(
            insert(PriceFeed).values(feed=feed).on_conflict_do_nothing(index_elements=["feed"])
        )
        row = s.execute(
            update(PriceFeed)
            .where(PriceFeed.feed == feed)
            .values(checked_at=now, last_error=error)
            .returning(PriceFeed.value, PriceFeed.as_of)
        ).one()
        incident = s.scalar(
            update(PriceFeed)
            .where(PriceFeed.feed == feed, PriceFeed.alerting.is_(False))
            .values(alerting=True, incident=PriceFeed.incident + 1)
            .returning(PriceFeed.incident)
        )
        if incident is not None:
            request_notification(s, template=TEMPLATE, entity_key=f"price_feed:{feed}#{incident}")
    value, as_of = row
    age = (now - as_of).total_seconds() if as_of is not None else None
    if age is not None:
        FEED_AGE.labels(feed).set(age)
    stale = age is None or age > max_age
    log.error(
        "price feed %r: every source failed; keeping the last value (age %s s, stale %r, new incident %r)",
        feed,
        None if age is None else round(age),
        stale,
        incident,
    )
    return {
        "feed": feed,
        "outcome": "all_sources_failed",
        "value": None if value is None else str(value),
        "age_s": None if age is None else round(age, 3),
        "stale": stale,
        "incident": incident,
    }
