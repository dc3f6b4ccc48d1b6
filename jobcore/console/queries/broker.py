"""Queue depths and consumers straight from RabbitMQ (passive declares: nothing is consumed or
requeued, unlike dashboards that read a queue by pulling its messages)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from jobcore import amqp

SUFFIXES = ("", ".DQ", ".XQ")


@dataclasses.dataclass
class Depth:
    messages: int | None
    consumers: int | None


def depths(url: str, queues: Sequence[str]) -> tuple[dict[str, Depth], str | None]:
    """name -> depth for every queue and its .DQ/.XQ; an error text when RabbitMQ is unreachable."""
    import pika
    import pika.exceptions

    out: dict[str, Depth] = {}
    try:
        conn = amqp.connect(
            url, socket_timeout=3, blocked_connection_timeout=3, connection_attempts=1
        )
    except pika.exceptions.AMQPError as exc:
        return {}, f"RabbitMQ could not be reached: {type(exc).__name__}"
    try:
        channel = conn.channel()
        for name in (q + s for q in queues for s in SUFFIXES):
            try:
                method = channel.queue_declare(name, passive=True).method
                out[name] = Depth(method.message_count, method.consumer_count)
            except pika.exceptions.ChannelClosedByBroker:
                out[name] = Depth(None, None)
                channel = conn.channel()
    finally:
        conn.close()
    return out, None
