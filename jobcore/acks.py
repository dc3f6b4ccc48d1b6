"""Acks that wait for the ledger without holding a worker thread.

A worker thread hands its message to the consumer for acking right after the job; if that
thread had to wait for the ledger's commit, 8 threads would spend most of their time waiting.
Instead the consumer defers the ack (or reject) until the ledger writer has committed the
message's final state, and the thread moves on. Unacked messages count against the prefetch
limit, so a ledger that cannot write stops the intake instead of losing outcomes.

One commit releases many acks: the consumer collects the tags of a commit and sends one
``basic_ack(multiple=True)`` up to the highest of them below every delivery of the channel
still unsettled (running, waiting for the ledger, delayed, handed back), and single acks for
the rest; so a message is never acked before its own final state is committed, and a rejected
or requeued one is never covered by a multiple ack.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import pika.exceptions
from dramatiq.brokers.rabbitmq import RabbitmqBroker, _RabbitmqConsumer
from dramatiq.errors import ConnectionClosed

from jobcore.ledger.writer import LedgerWriter

TICKET_ATTRIBUTE = "ledger_ticket"
_regular_nack = threading.local()


class _RememberingIterator:
    """Wraps pika's consume iterator to keep the last delivery, so an undecodable body that
    Dramatiq rejects can still be stored as a dead letter."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.last: tuple[Any, Any, bytes] | None = None

    def __iter__(self) -> _RememberingIterator:
        return self

    def __next__(self) -> Any:
        item = next(self.inner)
        self.last = item if item and item[0] is not None else None
        return item


def expose_fields(proxy: Any) -> None:
    """Put the message's fields on its proxy, so reading them skips ``MessageProxy.__getattr__``
    (a Python call per read; a job's hooks read about 30). Safe because Dramatiq's ``Message`` is
    frozen and a proxy never swaps it: the values are the message's own objects (``options`` is
    the one dict that Retries and others change)."""
    proxy.__dict__.update(vars(proxy._message))


def _well_formed(message: Any) -> bool:
    """The fields Dramatiq relies on have the types it expects."""
    m = message._message
    return (
        isinstance(m.queue_name, str)
        and isinstance(m.actor_name, str)
        and isinstance(m.message_id, str)
        and isinstance(m.args, list | tuple)
        and isinstance(m.kwargs, dict)
        and isinstance(m.options, dict)
        and isinstance(m.message_timestamp, int)
        and not isinstance(m.message_timestamp, bool)
    )


def split_acks(tags: Iterable[int], unsettled: Iterable[int]) -> tuple[int | None, list[int]]:
    """The highest tag one ``basic_ack(multiple=True)`` may cover, and the tags to ack singly.

    A multiple ack settles every delivery of the channel up to its tag, so it may only reach
    below the lowest delivery still unsettled; the tags above that are acked one by one.
    """
    ordered = sorted(tags)
    lowest = min(unsettled, default=None)
    below = len(ordered) if lowest is None else bisect.bisect_left(ordered, lowest)
    return (ordered[below - 1] if below else None), ordered[below:]


class LedgerAckedConsumer(_RabbitmqConsumer):
    """A RabbitMQ consumer whose acks and rejects follow the ledger's commits."""

    broker: LedgerAckedRabbitmqBroker

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.iterator = _RememberingIterator(self.iterator)
        # held while a tag leaves known_tags until its ack or reject is queued on the
        # connection: a multiple ack decided in between would settle a rejected message
        self._settling = threading.Lock()
        self._committed: list[int] = []  # tags whose final state is committed, not yet acked
        # delivery tag -> message id, written by the consumer thread only; the heartbeat reports
        # the ids of the tags still unsettled, so a job whose message a worker holds is not lost
        self._message_ids: dict[int, str] = {}

    def __next__(self) -> Any:
        message = super().__next__()
        if message is None:
            return None
        if len(self._message_ids) > 2 * len(self.known_tags) + 1024:  # pruned every ~1,000
            self._message_ids = {
                t: m for t, m in self._message_ids.copy().items() if t in self.known_tags
            }
        if _well_formed(message):
            expose_fields(message)
            self._message_ids[message._tag] = message.message_id
            return message
        # decodable JSON with the wrong shape would crash the consumer thread inside Dramatiq
        # (and be redelivered forever): store it and reject it here instead
        last = self.iterator.last
        if self.broker.on_undecodable is not None and last is not None:
            try:
                self.broker.on_undecodable(self.queue_name, last[2])
            except Exception:
                self.logger.critical("could not store a malformed message", exc_info=True)
        with self._settling:
            self.known_tags.discard(message._tag)
            _RabbitmqConsumer._nack(self, message._tag)
        return None

    def held_message_ids(self) -> list[str]:
        """Ids of the messages delivered to this consumer and not settled yet (a moment old:
        read from the heartbeat's thread; ``dict.copy`` and ``set.copy`` hold the GIL)."""
        ids, tags = self._message_ids.copy(), self.known_tags.copy()
        return [ids[tag] for tag in tags if tag in ids]

    def ack(self, message: Any) -> None:
        ticket = getattr(message, TICKET_ATTRIBUTE, None)
        writer = self.broker.ledger
        if ticket is None or writer is None:
            self._committed_tag(message._tag)
            self._send_acks()
        else:
            writer.when_durable(
                ticket, partial(self._committed_tag, message._tag), then=self._send_acks
            )

    def _committed_tag(self, tag: int) -> None:
        with self._settling:
            self._committed.append(tag)

    def _send_acks(self) -> None:
        """Ack every collected tag: one multiple ack where the channel allows it, singly above."""
        with self._settling:
            collected, self._committed = self._committed, []
            tags = []
            for tag in collected:
                try:
                    self.known_tags.remove(tag)
                    tags.append(tag)
                except KeyError:
                    self.logger.warning("Failed to ack message: not in known tags.")
            if not tags:
                return
            # the consumer thread adds newer tags to known_tags meanwhile; all are above every
            # collected tag (delivery tags grow, and these were delivered before), and min()
            # over a set of ints runs without releasing the GIL
            upto, singles = split_acks(tags, self.known_tags)
            try:
                self.connection.add_callback_threadsafe(partial(self._basic_acks, upto, singles))
            except (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError) as e:
                raise ConnectionClosed(e) from None

    def _basic_acks(self, upto: int | None, singles: list[int]) -> None:
        if upto is not None:
            self.channel.basic_ack(upto, multiple=True)
        for tag in singles:
            self.channel.basic_ack(tag)

    def nack(self, message: Any) -> None:
        ticket = getattr(message, TICKET_ATTRIBUTE, None)
        writer = self.broker.ledger
        if ticket is None or writer is None:
            self._nack_message(message)
        else:
            writer.when_durable(ticket, partial(self._nack_message, message))

    def _nack_message(self, message: Any) -> None:
        with self._settling:
            _regular_nack.active = True
            try:
                _RabbitmqConsumer.nack(self, message)
            finally:
                _regular_nack.active = False

    def _nack(self, tag: Any) -> None:
        last = self.iterator.last
        if (
            not getattr(_regular_nack, "active", False)
            and last is not None
            and last[0].delivery_tag == tag
        ):
            # Dramatiq rejects a body it cannot decode straight from the consumer: keep it
            hook = self.broker.on_undecodable
            if hook is not None:
                try:
                    hook(self.queue_name, last[2])
                except Exception:
                    self.logger.critical("could not store an undecodable message", exc_info=True)
        super()._nack(tag)

    def requeue(self, messages: Any) -> None:
        """Messages handed back unstarted: mark them, so their redelivery is not taken for a crash."""
        hook = self.broker.on_requeue
        ids = [m.message_id for m in messages]
        if hook is not None and ids:
            try:
                hook(ids)
            except Exception:
                self.logger.warning("could not mark %d requeued messages", len(ids), exc_info=True)
        super().requeue(messages)

    def close(self) -> None:
        if self.broker.ledger is not None:
            self.broker.ledger.flush(timeout=30)  # runs the acks still waiting
        super().close()


class LedgerAckedRabbitmqBroker(RabbitmqBroker):
    """RabbitmqBroker whose consumers ack only what the ledger has recorded.

    Parameters:
      ledger: the process's ledger writer (None: plain acks).
      on_undecodable: stores a body Dramatiq could not decode (queue, raw body).
      on_requeue: marks message ids handed back unstarted.
    """

    def __init__(
        self,
        *,
        ledger: LedgerWriter | None = None,
        on_undecodable: Callable[[str, bytes], None] | None = None,
        on_requeue: Callable[[list[str]], None] | None = None,
        **kwargs: Any,
    ) -> None:
        self.ledger = ledger
        self.on_undecodable = on_undecodable
        self.on_requeue = on_requeue
        super().__init__(**kwargs)

    @property
    def consumer_class(self) -> type[_RabbitmqConsumer]:
        return LedgerAckedConsumer
