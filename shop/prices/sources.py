"""Price sources: where a feed's value comes from, and what counts as a good answer.

A source answers ``GET /v1/rates?base=EUR&symbols=USD`` with ``{"base", "rates": {SYM: "1.08"},
"as_of": ISO-8601}``. Anything else is a failure with an outcome the metrics count: ``error``
(connection, 5xx, 4xx), ``timeout``, ``garbage`` (not the shape, not a positive number) or
``stale`` (``as_of`` older than the feed's max age).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import math
import re
from typing import Any

import httpx

from jobcore.errors import InvalidInput
from shop.integrations import outbound

FEED = re.compile(r"^([A-Z]{3})_([A-Z]{3})$")
NAME = re.compile(r"^[a-z0-9_-]{1,32}$")


@dataclasses.dataclass(frozen=True)
class Quote:
    value: decimal.Decimal
    as_of: dt.datetime


class SourceFailed(Exception):
    """One source gave no usable value; ``outcome`` is the metrics label."""

    def __init__(self, outcome: str, detail: str) -> None:
        super().__init__(f"{outcome}: {detail}")
        self.outcome = outcome


def parse_sources(raw: str) -> list[tuple[str, str]]:
    """``"primary=http://a,backup=http://b"`` → ``[("primary", "http://a"), ...]`` in fallback order."""
    sources = []
    for part in filter(None, (p.strip() for p in raw.split(","))):
        name, _, url = part.partition("=")
        if not NAME.match(name) or not url.startswith(("http://", "https://")):
            raise InvalidInput(f"price source {part!r} is not name=http(s)://url")
        sources.append((name, url.rstrip("/")))
    if not sources:
        raise InvalidInput("no price sources are configured")
    return sources


def parse_feed(feed: Any) -> tuple[str, str]:
    match = FEED.match(feed) if isinstance(feed, str) else None
    if match is None:
        raise InvalidInput(f"feed must look like EUR_USD, got {feed!r:.40}")
    return match.group(1), match.group(2)


def policy_for(allowed_hosts: str, sources: list[tuple[str, str]]) -> outbound.Policy:
    """The outbound policy of the feed: the allow-list plus the configured sources' own hosts
    (at public addresses unless listed)."""
    return outbound.Policy.for_urls(allowed_hosts, *(url for _, url in sources))


def fetch(
    url: str, feed: str, max_age_s: float, timeout_s: float, policy: outbound.Policy | None = None
) -> Quote:
    """One source's quote for ``feed``, or ``SourceFailed``; every redirect hop is checked."""
    base, symbol = parse_feed(feed)
    policy = outbound.Policy() if policy is None else policy
    timeout = httpx.Timeout(timeout_s, connect=min(2.0, timeout_s))
    try:
        with outbound.stream(
            policy, f"{url}/v1/rates", timeout, params={"base": base, "symbols": symbol}
        ) as response:
            response.read()
    except outbound.OutboundRefused as exc:
        raise SourceFailed("error", str(exc)) from None
    except httpx.TimeoutException as exc:
        raise SourceFailed("timeout", type(exc).__name__) from None
    except httpx.TransportError as exc:
        raise SourceFailed("error", type(exc).__name__) from None
    if response.status_code != 200:
        raise SourceFailed("error", f"HTTP {response.status_code}")
    try:
        body = response.json()
        value = decimal.Decimal(str(body["rates"][symbol]))
        as_of = dt.datetime.fromisoformat(body["as_of"])
        if body["base"] != base or as_of.tzinfo is None:
            raise ValueError("wrong base or naive time")
    except (ValueError, KeyError, TypeError, decimal.InvalidOperation) as exc:
        raise SourceFailed("garbage", f"unexpected answer ({type(exc).__name__})") from None
    if not value.is_finite() or value <= 0 or not math.isfinite(float(value)):
        raise SourceFailed("garbage", f"not a positive rate: {value}")
    age = (dt.datetime.now(dt.UTC) - as_of).total_seconds()
    if age > max_age_s:
        raise SourceFailed("stale", f"quote is {age:.0f}s old (max {max_age_s:.0f}s)")
    return Quote(value, as_of)
