"""How many messages of a queue exist anywhere, so a job is called lost only when none does.

A message is ready in RabbitMQ (in its queue, or in the queue's ``.DQ`` while delayed) or held
by a consumer: delivered and not yet acked. A passive declare counts only the ready ones (the
management API, which counts unacked ones too, is not enabled everywhere), and a worker holds
up to its prefetch (16 a thread) while the jobs ahead of them run. So every worker process
writes what it holds, per queue, into its registry row with each heartbeat
(``worker_processes.held``), and a queue's depth is its ready messages plus those held by the
live processes. A queue that does not exist holds nothing: deleted, what it held is gone.
RabbitMQ that cannot be reached raises: nothing is called lost on a guess.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from jobcore import amqp
from jobcore.worker_registry import STALE_S

DELAYED = ".DQ"
TIMEOUT_S = 5

# psycopg2 style: the scrape-time metric (jobcore.metrics.queues) runs it on its own cursor
HELD_SQL = """
SELECT h.key AS queue, sum(h.value::int) AS held
FROM worker_processes w, jsonb_each_text(w.held) h
WHERE w.heartbeat_at > now() - make_interval(secs => %(stale_s)s)
GROUP BY h.key
"""


def message_counts(
    amqp_url: str, names: Sequence[str], timeout_s: float = TIMEOUT_S
) -> dict[str, int]:
    """Ready messages of each named queue that exists, by a passive declare on one connection
    (a queue not declared, or deleted, is left out)."""
    import pika

    out: dict[str, int] = {}
    conn = amqp.connect(
        amqp_url,
        socket_timeout=timeout_s,
        blocked_connection_timeout=timeout_s,
        connection_attempts=1,
    )
    try:
        for name in names:
            channel = conn.channel()
            try:
                out[name] = channel.queue_declare(name, passive=True).method.message_count
                channel.close()
            except pika.exceptions.ChannelClosedByBroker:
                pass  # 404: not declared
    finally:
        conn.close()
    return out


def ready(amqp_url: str, queues: Sequence[str]) -> dict[str, int]:
    """Ready messages of each queue and its ``.DQ`` together (0 for queues not declared)."""
    counts = message_counts(amqp_url, [n for q in queues for n in (q, q + DELAYED)])
    return {q: counts.get(q, 0) + counts.get(q + DELAYED, 0) for q in queues}


def held(session: Session) -> dict[str, int]:
    """Messages the live worker processes hold, by queue (a delayed one under its queue)."""
    rows = session.connection().exec_driver_sql(HELD_SQL, {"stale_s": STALE_S})
    return {queue: int(count) for queue, count in rows}


class Depths:
    """``depths(queue)``: the messages of ``queue`` anywhere, ready or held; each queue is read
    once per instance, so one pass over many jobs asks RabbitMQ once per queue.

    Parameters:
      session: reads the registry's held counts (once, at the first call).
      amqp_url: the broker's URL (``SHOPJOBS_AMQP_URL``, one node or several).
    """

    def __init__(self, session: Session, amqp_url: str) -> None:
        self.session = session
        self.amqp_url = amqp_url
        self._held: dict[str, int] | None = None
        self._depths: dict[str, int] = {}

    def __call__(self, queue: str) -> int:
        if queue not in self._depths:
            if self._held is None:
                self._held = held(self.session)
            found = ready(self.amqp_url, [queue])[queue]
            self._depths[queue] = found + self._held.get(queue, 0)
        return self._depths[queue]
