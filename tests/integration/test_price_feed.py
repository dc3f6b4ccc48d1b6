"""The price feed against two price-source stand-ins: fallback, last known value, one alert per incident."""

from __future__ import annotations

import decimal
import os

from prometheus_client import REGISTRY

from actors.prices import poll_price_feed
from jobcore.db import session_scope
from shop.integrations import providers
from shop.models import PriceFeed
from shop.prices import feed as price_feed
from shop.settings import Settings
from tests.support.catalog import finished, notifications


def _feed() -> PriceFeed:
    with session_scope() as s:
        return s.get(PriceFeed, "EUR_USD")


def _poll() -> None:
    assert finished(poll_price_feed.send("EUR_USD").message_id).state == "succeeded"


def test_the_feed_falls_back_keeps_the_last_good_value_and_alerts_once_per_incident(
    catalog, catalog_worker
):
    primary, backup = catalog["primary"], catalog["backup"]
    primary.admin("POST", "/_admin/rates", {"EUR_USD": "1.1000"})
    backup.admin("POST", "/_admin/rates", {"EUR_USD": "1.2000"})

    # Given both sources up, the primary's value is taken
    _poll()
    assert (_feed().value, _feed().source, _feed().version) == (
        decimal.Decimal("1.1"),
        "primary",
        1,
    )

    # When the primary answers 503, the backup's value is taken (and the fault was hit)
    primary.set_faults(mode="http_503")
    _poll()
    assert primary.faults()["injected"] == 1
    assert (_feed().value, _feed().source, _feed().version) == (decimal.Decimal("1.2"), "backup", 2)
    assert notifications("price_feed_alert") == []

    # When the primary sends garbage and the backup a two-day-old quote, twice
    primary.set_faults(mode="garbage")
    backup.set_faults(mode="stale")
    _poll()
    _poll()
    # Then the last good value stays, with the errors, and the admins got one alert
    feed = _feed()
    assert (feed.value, feed.source, feed.alerting, feed.incident) == (
        decimal.Decimal("1.2"),
        "backup",
        True,
        1,
    )
    assert "primary: garbage" in feed.last_error and "backup: stale" in feed.last_error
    assert (primary.faults()["injected"], backup.faults()["injected"]) == (2, 2)
    assert notifications("price_feed_alert") == [("price_feed:EUR_USD#1", None)]

    # When a source recovers the incident closes; the next outage (a timeout) is a new one
    backup.clear_faults()
    _poll()
    assert (_feed().alerting, _feed().source) == (False, "backup")
    primary.set_faults(mode="timeout", delay_s=3)
    backup.set_faults(mode="http_500")
    _poll()
    assert primary.faults()["injected"] == 1 and "primary: timeout" in _feed().last_error
    assert notifications("price_feed_alert") == [
        ("price_feed:EUR_USD#1", None),
        ("price_feed:EUR_USD#2", None),
    ]


def test_every_fetch_is_counted_by_source_and_outcome_and_the_age_is_a_gauge(catalog):
    # Given the feed service in this process, pointed at the two sources (the primary is down)
    env = {**os.environ, **catalog["env"]}
    providers.configure(Settings.from_env(env))
    catalog["primary"].set_faults(mode="http_503")

    def fetches(source: str, outcome: str) -> float:
        value = REGISTRY.get_sample_value(
            "shopjobs_price_feed_fetches_total",
            {"feed": "EUR_USD", "source": source, "outcome": outcome},
        )
        return value or 0.0

    before = fetches("primary", "error"), fetches("backup", "ok")
    try:
        # When it polls three times
        results = [price_feed.poll_price_feed("EUR_USD") for _ in range(3)]
    finally:
        providers.configure(Settings.from_env())
    # Then three primary errors and three backup successes were counted, and the age is fresh
    assert [r["source"] for r in results] == ["backup"] * 3
    assert (fetches("primary", "error") - before[0], fetches("backup", "ok") - before[1]) == (3, 3)
    age = REGISTRY.get_sample_value("shopjobs_price_feed_age_seconds", {"feed": "EUR_USD"})
    assert age is not None and 0 <= age < 60
