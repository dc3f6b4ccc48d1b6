"""The job system's own metrics (Prometheus names: ``shopjobs_`` prefix, base units, ``_total``).

Labels are bounded sets (actor, queue, outcome, reason, middleware, hook); never ids or text
from a job, so nothing personal can reach a metric.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 21600)
CONFIRM_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)

JOBS = Counter(
    "shopjobs_jobs",
    "Deliveries processed by outcome: succeeded, retried, failed (for good), skipped, dead.",
    ["actor", "queue", "outcome"],
)
DURATION = Histogram(
    "shopjobs_job_duration_seconds",
    "Time a delivery spent in the worker, middleware included.",
    ["actor", "queue"],
    buckets=DURATION_BUCKETS,
)
IN_PROGRESS = Gauge(
    "shopjobs_jobs_in_progress",
    "Deliveries running now.",
    ["actor", "queue"],
    multiprocess_mode="livesum",
)
RETRIES = Counter(
    "shopjobs_job_retries", "Failed attempts sent back for a retry.", ["actor", "queue"]
)
DEAD_LETTERS = Counter(
    "shopjobs_dead_letters",
    "Messages rejected to a dead-letter queue, by reason.",
    ["queue", "reason"],
)
MIDDLEWARE_ERRORS = Counter(
    "shopjobs_middleware_errors",
    "Exceptions raised by a middleware hook (Dramatiq logs and swallows most of them).",
    ["middleware", "hook"],
)
QUEUE_WAIT = Histogram(
    "shopjobs_job_queue_wait_seconds",
    "Time from enqueue (or the due time of a delayed message) to the start of its run.",
    ["queue"],
    buckets=WAIT_BUCKETS,
)
PUBLISHED = Counter("shopjobs_messages_published", "Messages published and confirmed.", ["queue"])
PUBLISH_FAILURES = Counter(
    "shopjobs_publish_failures", "Publishes that raised (broker down, no confirm).", ["queue"]
)
PUBLISH_SECONDS = Histogram(
    "shopjobs_publish_confirm_seconds",
    "Time to publish a message and receive the broker's confirm.",
    ["queue"],
    buckets=CONFIRM_BUCKETS,
)
