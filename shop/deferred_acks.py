"""Acks that wait for the ledger without holding a worker thread.

A worker thread hands its message to the consumer for acking right after the job; if that
thread had to wait for the ledger's commit, 8 threads would spend most of their time waiting.
Instead the consumer defers the ack (or reject) until the ledger writer has committed the
message's final state, and the thread moves on. Unacked messages count against the prefetch
limit, so a ledger that cannot write stops the intake instead of losing outcomes.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from dramatiq.brokers.rabbitmq import RabbitmqBroker, _RabbitmqConsumer

from shop.ledger import LedgerWriter

TICKET_ATTRIBUTE = "ledger_ticket"


class LedgerAckedConsumer(_RabbitmqConsumer):
    """A RabbitMQ consumer whose acks and rejects follow the ledger's commits."""

    broker: LedgerAckedRabbitmqBroker

    def _deferred(self, action: Any, message: Any) -> None:
        ticket = getattr(message, TICKET_ATTRIBUTE, None)
        writer = self.broker.ledger
        if ticket is None or writer is None:
            action(message)
        else:
            writer.when_durable(ticket, partial(action, message))

    def ack(self, message: Any) -> None:
        self._deferred(super().ack, message)

    def nack(self, message: Any) -> None:
        self._deferred(super().nack, message)

    def close(self) -> None:
        if self.broker.ledger is not None:
            self.broker.ledger.flush(timeout=30)  # runs the acks still waiting
        super().close()


class LedgerAckedRabbitmqBroker(RabbitmqBroker):
    """RabbitmqBroker whose consumers ack only what the ledger has recorded.

    Parameters:
      ledger: the process's ledger writer (None: plain acks).
    """

    def __init__(self, *, ledger: LedgerWriter | None = None, **kwargs: Any) -> None:
        self.ledger = ledger
        super().__init__(**kwargs)

    @property
    def consumer_class(self) -> type[_RabbitmqConsumer]:
        return LedgerAckedConsumer
