"""Queue depth and the age of the oldest waiting job, read at scrape time.

RabbitMQ's passive declares give ready counts of each queue, its ``.DQ`` (delayed) and ``.XQ``
(dead-lettered) without the management plugin (not enabled everywhere); the job ledger in
PostgreSQL knows when each unfinished job was enqueued. A source that does not answer within
a couple of seconds is reported by ``shopjobs_metrics_source_up`` = 0 and its series are left
out of that scrape, rather than failing the scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from jobcore import queue_depth
from jobcore.ledger import lost, stranded
from jobcore.ledger.states import State

logger = logging.getLogger(__name__)
TIMEOUT_S = 2
STATES = {"": "ready", ".DQ": "delayed", ".XQ": "dead_lettered"}

OLDEST_SQL = f"""
SELECT queue, EXTRACT(EPOCH FROM now() - min(coalesce(eta, enqueued_at)))
FROM job_ledger
WHERE state IN ('{State.SCHEDULED}', '{State.ENQUEUED}') AND (eta IS NULL OR eta <= now())
  AND enqueued_at IS NOT NULL
GROUP BY queue
"""
STORED_SQL = "SELECT queue, count(*) FROM dead_letters WHERE replayed_at IS NULL GROUP BY queue"


def _depths(amqp_url: str, queues: Sequence[str]) -> dict[tuple[str, str], int]:
    """Each existing queue's ready count by state (a queue not declared yet has no series)."""
    names = {queue + suffix: (queue, state) for queue in queues for suffix, state in STATES.items()}
    counts = queue_depth.message_counts(amqp_url, list(names), TIMEOUT_S)
    return {names[name]: count for name, count in counts.items()}


def _ledger(
    dsn: str,
    empty: list[str] | None,
    stranded_after_s: float = 300.0,
    fifo: bool = True,
) -> tuple[dict[str, float], dict[str, int], tuple[int, int | None]]:
    """``empty``: the queues with nothing ready, read before (None: RabbitMQ did not answer,
    and lost jobs cannot be told from waiting ones)."""
    import psycopg2

    conn = psycopg2.connect(
        dsn,
        connect_timeout=TIMEOUT_S,
        options=f"-c statement_timeout={TIMEOUT_S * 1000}",
        application_name="shopjobs-metrics",
    )
    try:
        with conn.cursor() as cur:
            cur.execute(OLDEST_SQL)
            oldest = {q: max(0.0, float(age)) for q, age in cur.fetchall()}
            cur.execute(STORED_SQL)
            stored = {q: int(n) for q, n in cur.fetchall()}
            params = {"older_than_s": stranded_after_s}
            cur.execute(stranded.UNPUBLISHED_COUNT_SQL, params)
            unpublished = int(cur.fetchone()[0])
            found = None
            if empty is not None:
                cur.execute(lost.LOST_BY_QUEUE_SQL, lost.params(stranded_after_s, empty, fifo))
                found = sum(int(n) for _, n in cur.fetchall())
        conn.rollback()
    finally:
        conn.close()
    return oldest, stored, (unpublished, found)


class QueueCollector(Collector):
    """Per queue: messages by state, oldest waiting job's age, stored dead letters."""

    def __init__(self, settings: Any, queues: Sequence[str]) -> None:
        self.settings = settings
        self.queues = tuple(queues)
        # a queue not declared yet answers 404, which pika logs as a warning: expected here
        logging.getLogger("pika.channel").setLevel(logging.ERROR)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            "shopjobs_metrics_source_up", "1 when a scrape-time source answered.", labels=["source"]
        )
        depths: dict[tuple[str, str], int] | None = None
        try:
            depths = _depths(self.settings.amqp_url, self.queues)
        except Exception as exc:  # noqa: BLE001  (any failure of a source: report it, keep scraping)
            logger.warning("queue depths unavailable: %s", type(exc).__name__)
            up.add_metric(["rabbitmq"], 0)
        else:
            up.add_metric(["rabbitmq"], 1)
            messages = GaugeMetricFamily(
                "shopjobs_queue_messages",
                "Messages in a queue, by state.",
                labels=["queue", "state"],
            )
            for (queue, state), count in sorted(depths.items()):
                messages.add_metric([queue, state], count)
            yield messages
        try:
            oldest, stored, (unpublished, lost_jobs) = _ledger(
                self.settings.psycopg_dsn,
                None if depths is None else _empty(self.queues, depths),
                getattr(self.settings, "stranded_after_s", 300.0),
                not getattr(self.settings, "queue_max_priority", 0),
            )
        except Exception as exc:  # noqa: BLE001  (any failure of a source: report it, keep scraping)
            logger.warning("ledger ages unavailable: %s", type(exc).__name__)
            up.add_metric(["postgresql"], 0)
        else:
            up.add_metric(["postgresql"], 1)
            age = GaugeMetricFamily(
                "shopjobs_queue_oldest_message_age_seconds",
                "Age of the oldest job waiting to start (0 when none waits).",
                labels=["queue"],
            )
            dead = GaugeMetricFamily(
                "shopjobs_dead_letters_stored",
                "Dead letters stored and not replayed.",
                labels=["queue"],
            )
            for queue in self.queues:
                age.add_metric([queue], oldest.get(queue, 0.0))
                dead.add_metric([queue], stored.get(queue, 0))
            yield age
            yield dead
            yield _stranded_family(unpublished, lost_jobs)
        yield up


def _empty(queues: Sequence[str], depths: dict[tuple[str, str], int]) -> list[str]:
    """The queues with nothing ready or delayed (read before the ledger: jobcore.ledger.lost)."""
    return [
        q for q in queues if not depths.get((q, "ready"), 0) and not depths.get((q, "delayed"), 0)
    ]


def _stranded_family(unpublished: int, lost_jobs: int | None) -> GaugeMetricFamily:
    """Stranded sends: unpublished past due; lost (due, published, in no queue and held by no
    worker: ``jobcore.ledger.lost``)."""
    family = GaugeMetricFamily(
        "shopjobs_stranded",
        "Committed sends stranded longer than SHOPJOBS_STRANDED_AFTER_S, by kind.",
        labels=["kind"],
    )
    family.add_metric(["unpublished"], unpublished)
    if lost_jobs is not None:  # without queue depths "lost" cannot be told from "waiting"
        family.add_metric(["lost"], lost_jobs)
    return family
