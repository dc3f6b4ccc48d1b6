"""The price feed's metrics (multi-process safe: the gauge keeps the most recent write)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

FEED_AGE = Gauge(
    "shopjobs_price_feed_age_seconds",
    "Age of the feed's last known good value, at the last poll",
    ["feed"],
    multiprocess_mode="mostrecent",
)
FETCHES = Counter(
    "shopjobs_price_feed_fetches_total",
    "Fetches from each price source, by outcome (ok, error, timeout, garbage, stale)",
    ["feed", "source", "outcome"],
)
