"""Last-success timestamps come from the tables the periodic jobs write, at scrape time."""

from __future__ import annotations

import datetime as dt

from prometheus_client import CollectorRegistry

import broker
from jobcore.db import session_scope
from shop.models import Backup, HealthCheck, PriceFeed
from shop.ops.freshness import FreshnessCollector

T0 = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


def _scrape() -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(FreshnessCollector(broker.settings.psycopg_dsn))
    return registry


def test_the_last_good_value_the_last_poll_health_check_and_verified_backup_are_exported(clean):
    # Given a feed whose last good value is older than its last (failed) poll, two health
    # checks, a verified and a corrupt daily backup
    with session_scope() as s:
        s.add(PriceFeed(feed="EUR_USD", fetched_at=T0, checked_at=T0 + dt.timedelta(hours=2)))
        s.add_all(
            [
                HealthCheck(component="postgresql", up=True, latency_ms=1, checked_at=T0),
                HealthCheck(
                    component="smtp",
                    up=False,
                    latency_ms=1,
                    checked_at=T0 + dt.timedelta(minutes=1),
                ),
            ]
        )
        s.add_all(
            [
                Backup(kind="daily", period_key="d1", status="verified", verified_at=T0),
                Backup(
                    kind="daily",
                    period_key="d2",
                    status="corrupt",
                    verified_at=T0 + dt.timedelta(days=1),
                ),
            ]
        )
    registry = _scrape()
    value = registry.get_sample_value
    # Then each is the time of the last success (a corrupt backup is no success)
    assert (
        value("shopjobs_price_feed_last_success_timestamp_seconds", {"feed": "EUR_USD"})
        == T0.timestamp()
    )
    assert (
        value("shopjobs_price_feed_last_poll_timestamp_seconds", {"feed": "EUR_USD"})
        == T0.timestamp() + 7200
    )
    assert value("shopjobs_health_check_last_run_timestamp_seconds") == T0.timestamp() + 60
    assert (
        value("shopjobs_backup_last_verified_timestamp_seconds", {"kind": "daily"})
        == T0.timestamp()
    )


def test_nothing_recorded_yet_exports_no_timestamps(clean):
    registry = _scrape()
    assert registry.get_sample_value("shopjobs_health_check_last_run_timestamp_seconds") is None
    assert (
        registry.get_sample_value(
            "shopjobs_backup_last_verified_timestamp_seconds", {"kind": "daily"}
        )
        is None
    )
