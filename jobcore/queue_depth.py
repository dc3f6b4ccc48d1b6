"""How many messages of a queue are ready in RabbitMQ, and how many the workers hold.

A message is ready in RabbitMQ (in its queue, or in the queue's ``.DQ`` while delayed) or held
by a consumer: delivered and not yet acked. A passive declare counts only the ready ones (the
management API, which counts unacked ones too, is not enabled everywhere); every worker process
writes what it holds into its registry row with each heartbeat (``jobcore.worker_registry``:
``held`` by queue, ``held_ids`` by message, which ``jobcore.ledger.lost`` reads). A queue that does not exist (404)
holds nothing: deleted, what it held is gone. Any other refusal (403 access refused, ...) and
RabbitMQ that cannot be reached raise: nothing is called lost on a guess.
"""

from __future__ import annotations

from collections.abc import Sequence

from jobcore import amqp

DELAYED = ".DQ"
NOT_FOUND = 404
TIMEOUT_S = 5


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
            except pika.exceptions.ChannelClosedByBroker as exc:
                if exc.reply_code != NOT_FOUND:
                    raise
    finally:
        conn.close()
    return out


def ready(amqp_url: str, queues: Sequence[str]) -> dict[str, int]:
    """Ready messages of each queue and its ``.DQ`` together (0 for queues not declared)."""
    counts = message_counts(amqp_url, [n for q in queues for n in (q, q + DELAYED)])
    return {q: counts.get(q, 0) + counts.get(q + DELAYED, 0) for q in queues}
