"""Direct AMQP access for tests: queue depths, raw publishing, purging (pika, the test vhost)."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pika

from devtools import devservices
from jobcore import amqp
from shop.queues import Queue


@contextmanager
def channel() -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
    conn = amqp.connect(os.environ["SHOPJOBS_AMQP_URL"])
    try:
        yield conn.channel()
    finally:
        conn.close()


def vhost() -> str:
    """The test run's vhost (its name in ``SHOPJOBS_AMQP_URL``)."""
    return amqp.parameters(os.environ["SHOPJOBS_AMQP_URL"])[0].virtual_host


def depth(queue: str) -> int:
    """Ready messages in ``queue`` (-1 when it does not exist)."""
    with channel() as ch:
        try:
            return ch.queue_declare(queue, passive=True).method.message_count
        except pika.exceptions.ChannelClosedByBroker:
            return -1


def drain_ids(queue: str) -> Counter[str]:
    """Empty ``queue``; how many times each message id was in it (read from the bodies)."""
    seen: Counter[str] = Counter()
    with channel() as ch:
        while True:
            method, _, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                return seen
            seen[json.loads(body)["message_id"]] += 1


def publish_raw(queue: str, body: bytes) -> None:
    with channel() as ch:
        ch.confirm_delivery()
        ch.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2))


def declare(queue: str) -> None:
    """Declare a queue the way Dramatiq does (with its dead-letter queue)."""
    with channel() as ch:
        ch.queue_declare(f"{queue}.XQ", durable=True, arguments={"x-message-ttl": 7 * 86400 * 1000})
        ch.queue_declare(
            queue,
            durable=True,
            arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": f"{queue}.XQ"},
        )


def purge_all(extra: tuple[str, ...] = ("tests",)) -> None:
    devservices.purge_queues(
        os.environ["SHOPJOBS_AMQP_URL"], [q.value for q in Queue] + list(extra)
    )
