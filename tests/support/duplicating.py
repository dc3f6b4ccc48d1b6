"""Fault injection for workers: every message published is published a second time.

Loaded as an extra worker module (``dramatiq actors tests.support.duplicating``). The copy has
the same message id, as a broker or an outbox relay would produce it.
"""

from __future__ import annotations

from typing import Any

from dramatiq import Broker, Middleware

import broker as shop_broker

COPY_OPTION = "test_duplicate_copy"


class DuplicateEveryPublish(Middleware):
    def after_enqueue(self, broker: Broker, message: Any, delay: int | None) -> None:
        if (
            message.options.get(COPY_OPTION)
            or message.queue_name.endswith(".DQ")
            or "eta" in message.options
        ):
            return
        broker.enqueue(message.copy(options={**message.options, COPY_OPTION: True}))


shop_broker.broker.add_middleware(DuplicateEveryPublish())
