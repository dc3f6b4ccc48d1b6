"""When the periodic jobs last succeeded, read from the database at scrape time.

A gauge a job sets (the feed's age, a component's health) freezes at its last value when the
job stops running, so an alert on it never fires for the one fault that matters: the job is not
running. Timestamps of the last success, read from the tables the jobs write, keep ageing when
the job stops (the alert is on ``time() - timestamp``), and survive a worker restart.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import psycopg2
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)
TIMEOUT_S = 2

FEEDS_SQL = """
SELECT feed, EXTRACT(EPOCH FROM fetched_at), EXTRACT(EPOCH FROM checked_at)
FROM price_feeds
"""
HEALTH_SQL = "SELECT EXTRACT(EPOCH FROM max(checked_at)) FROM health_checks"
BACKUPS_SQL = """
SELECT kind, EXTRACT(EPOCH FROM max(verified_at))
FROM backups WHERE status = 'verified' AND verified_at IS NOT NULL
GROUP BY kind
"""


class FreshnessCollector(Collector):
    """Last success of the price feed (and its last poll), the health check and backups."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            with (
                contextlib.closing(
                    psycopg2.connect(
                        self.dsn,
                        connect_timeout=TIMEOUT_S,
                        application_name="shopjobs-metrics",
                        options=f"-c statement_timeout={TIMEOUT_S * 1000}",
                    )
                ) as conn,
                conn.cursor() as cur,
            ):
                cur.execute(FEEDS_SQL)
                feeds = cur.fetchall()
                cur.execute(HEALTH_SQL)
                (health,) = cur.fetchone()
                cur.execute(BACKUPS_SQL)
                backups = cur.fetchall()
        except psycopg2.Error as exc:  # shopjobs_metrics_source_up reports the database already
            logger.warning("freshness metrics unavailable: %s", type(exc).__name__)
            return
        success = GaugeMetricFamily(
            "shopjobs_price_feed_last_success_timestamp_seconds",
            "When the feed last stored a good value (unix time).",
            labels=["feed"],
        )
        polled = GaugeMetricFamily(
            "shopjobs_price_feed_last_poll_timestamp_seconds",
            "When the feed was last polled, whatever the outcome (unix time).",
            labels=["feed"],
        )
        for feed, fetched_at, checked_at in feeds:
            if fetched_at is not None:
                success.add_metric([feed], float(fetched_at))
            if checked_at is not None:
                polled.add_metric([feed], float(checked_at))
        yield success
        yield polled
        if health is not None:
            yield GaugeMetricFamily(
                "shopjobs_health_check_last_run_timestamp_seconds",
                "When the health check job last recorded a result (unix time).",
                value=float(health),
            )
        verified = GaugeMetricFamily(
            "shopjobs_backup_last_verified_timestamp_seconds",
            "When the last backup of each kind was verified restorable (unix time).",
            labels=["kind"],
        )
        for kind, at in backups:
            verified.add_metric([kind], float(at))
        yield verified
