"""A raw consumer that takes one delivery and never acks it: the control of a consumer_timeout test.

RabbitMQ closes the channel of a delivery left unacked past ``consumer_timeout`` with 406
PRECONDITION_FAILED; a test that expects none of the workers' channels closed shows with this
control's closed channel that the low timeout was in force.
"""

from __future__ import annotations

import contextlib
import time

import pika

from devtools.waiting import wait_until


class HeldDelivery:
    """A raw consumer that takes one delivery and never acks it (the control)."""

    def __init__(self, url: str, queue: str) -> None:
        self.queue = queue
        params = pika.URLParameters(url)
        params.heartbeat = 0  # nobody pumps this connection while the run waits
        self.connection = pika.BlockingConnection(params)
        self.port = int(self.connection._impl._transport._sock.getsockname()[1])
        self.channel = self.connection.channel()
        self.closed_with: int | None = None
        self.channel._impl.add_on_close_callback(self._on_close)
        self.delivered = 0
        self.held_at: float | None = None
        self.closed_at: float | None = None

    def _on_close(self, _channel: object, reason: Exception) -> None:
        self.closed_with = getattr(reason, "reply_code", None)
        self.closed_at = time.monotonic()

    def _on_message(self, *_: object) -> None:
        self.delivered += 1
        self.held_at = time.monotonic()

    def hold_one(self) -> HeldDelivery:
        self.channel.queue_declare(self.queue, auto_delete=True)
        self.channel.basic_publish("", self.queue, b"held")
        self.channel.basic_qos(prefetch_count=1)
        self.channel.basic_consume(self.queue, self._on_message)
        wait_until(self._taken, timeout=10, what="the control took its delivery")
        return self

    def _taken(self) -> bool:
        self.connection.process_data_events(time_limit=0.1)
        return self.delivered == 1

    def closed(self) -> bool:
        if self.channel.is_open:
            self.connection.process_data_events(time_limit=0)
        return self.channel.is_closed

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.connection.close()
