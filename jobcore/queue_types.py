"""Queue type as configuration: classic queues (with priorities when asked) or quorum queues.

Dramatiq declares classic queues only and never sets ``x-max-priority`` unless told, so a
message's ``broker_priority`` is silently ignored. Quorum queues are Raft-replicated across a
RabbitMQ cluster and cap redeliveries themselves (``x-delivery-limit``), dead-lettering to the
``.XQ`` queue at least once; they have no priorities, so a priority setting with them is
refused at start. A queue that already exists with other arguments fails the declaration at
once with what differs and how to migrate, instead of Dramatiq's 20 silent retries.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pika.exceptions
from dramatiq.brokers.rabbitmq import DEAD_MESSAGE_TTL, RabbitmqBroker
from dramatiq.common import dq_name, xq_name

CLASSIC = "classic"
QUORUM = "quorum"
MIGRATION_DOC = "docs/queues.md (Migrating classic queues to quorum)"


class QueueArgumentsMismatch(RuntimeError):
    """A queue exists in RabbitMQ with arguments other than the configured ones."""


@dataclasses.dataclass(frozen=True)
class QueueType:
    """How every queue of the application is declared.

    Parameters:
      kind: ``classic`` or ``quorum``.
      max_priority: classic only; 1-255 makes ``broker_priority`` work (0: no priorities).
      delivery_limit: quorum only; deliveries after which RabbitMQ dead-letters a message.
    """

    kind: str = CLASSIC
    max_priority: int = 0
    delivery_limit: int = 5

    def __post_init__(self) -> None:
        if self.kind not in (CLASSIC, QUORUM):
            raise ValueError(f"queue type {self.kind!r}: expected classic or quorum")
        if not 0 <= self.max_priority <= 255:
            raise ValueError(f"max priority {self.max_priority}: expected 0-255")
        if self.kind == QUORUM and self.max_priority:
            raise ValueError(
                "quorum queues have no priorities: set the max priority to 0 or use classic queues"
            )
        if self.delivery_limit < 1:
            raise ValueError(f"delivery limit {self.delivery_limit}: expected at least 1")

    def work_arguments(self, queue_name: str) -> dict[str, Any]:
        """Arguments of a canonical queue and of its ``.DQ``: both dead-letter to ``.XQ``."""
        arguments: dict[str, Any] = {
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": xq_name(queue_name),
        }
        if self.kind == QUORUM:
            arguments.update(
                {
                    "x-queue-type": QUORUM,
                    "x-delivery-limit": self.delivery_limit,
                    # at-least-once dead-lettering needs publishers refused, not heads dropped
                    "x-dead-letter-strategy": "at-least-once",
                    "x-overflow": "reject-publish",
                }
            )
        elif self.max_priority:
            arguments["x-max-priority"] = self.max_priority
        return arguments

    def dead_letter_arguments(self) -> dict[str, Any]:
        """Arguments of a ``.XQ`` queue: dead messages expire after Dramatiq's 7 days."""
        arguments: dict[str, Any] = {"x-message-ttl": DEAD_MESSAGE_TTL}
        if self.kind == QUORUM:
            arguments["x-queue-type"] = QUORUM
        return arguments

    def describe(self) -> str:
        if self.kind == QUORUM:
            return f"quorum queues (delivery limit {self.delivery_limit})"
        if self.max_priority:
            return f"classic queues with priorities 0-{self.max_priority}"
        return "classic queues"


_INEQUIVALENT = re.compile(r"inequivalent arg '([^']+)' for queue '([^']+)'")


def mismatch_message(queue_type: QueueType, reply_text: str) -> str:
    """What an operator reads when a queue exists with other arguments, and what to do."""
    found = _INEQUIVALENT.search(reply_text)
    what = f"argument {found.group(1)!r} of queue {found.group(2)!r}" if found else "a queue"
    return (
        f"RabbitMQ refused to declare {what} as {queue_type.describe()}: it exists with "
        f"other arguments ({reply_text}). Either set the queue type it was created with "
        f"(SHOPJOBS_QUEUE_TYPE, SHOPJOBS_QUEUE_MAX_PRIORITY) or migrate it with "
        f"`shopjobs queues migrate` while no worker runs; see {MIGRATION_DOC}."
    )


class TypedQueuesBroker(RabbitmqBroker):
    """Declares every queue as the configured ``QueueType`` says (set ``queue_type``)."""

    queue_type: QueueType = QueueType()

    def _build_queue_arguments(self, queue_name: str) -> dict[str, Any]:
        return self.queue_type.work_arguments(queue_name)

    def _declare_queue(self, queue_name: str) -> Any:
        return self._declare_checked(queue_name, self._build_queue_arguments(queue_name))

    def _declare_dq_queue(self, queue_name: str) -> Any:
        return self._declare_checked(dq_name(queue_name), self._build_queue_arguments(queue_name))

    def _declare_xq_queue(self, queue_name: str) -> Any:
        return self._declare_checked(xq_name(queue_name), self.queue_type.dead_letter_arguments())

    def _declare_checked(self, name: str, arguments: dict[str, Any]) -> Any:
        """Declare; a 406 (inequivalent arguments) is final, not a connection to retry."""
        try:
            return self.channel.queue_declare(queue=name, durable=True, arguments=arguments)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == 406:
                del self.connection
                raise QueueArgumentsMismatch(
                    mismatch_message(self.queue_type, exc.reply_text)
                ) from None
            raise
