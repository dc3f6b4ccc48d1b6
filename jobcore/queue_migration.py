"""Moving queues to another type (classic to quorum, or back) without losing a message.

RabbitMQ cannot change a queue's type in place: the queue is drained into a holding queue,
deleted, declared anew with the target arguments, and refilled. Each message is acked on its
source only after RabbitMQ confirmed it on its destination, so a migration stopped at any point
loses nothing; run again, it picks up where it stopped (a holding queue left behind is emptied
back into its queue). Workers must be stopped (a queue with consumers is refused); producers'
sends wait in the outbox meanwhile (an unroutable publish keeps its row).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions
from dramatiq.common import dq_name, xq_name

from jobcore import amqp
from jobcore.queue_types import QueueType

logger = logging.getLogger(__name__)
HOLDING_PREFIX = "shopjobs.migrating."


class MigrationRefused(RuntimeError):
    """The migration cannot start safely (the message says why and what to do)."""


@dataclasses.dataclass
class Moved:
    """What happened to one queue."""

    queue: str
    messages: int
    skipped: bool  # already of the target type, nothing to move


def _exists(connection: Any, name: str) -> tuple[int, int] | None:
    """(messages, consumers) of a queue, or None when it does not exist."""
    channel = connection.channel()
    try:
        method = channel.queue_declare(name, passive=True).method
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 404:
            return None
        raise
    channel.close()
    return method.message_count, method.consumer_count


def _declares_as(connection: Any, name: str, arguments: dict[str, Any]) -> bool:
    """Whether ``name`` exists with exactly ``arguments`` (a 406 says it does not)."""
    channel = connection.channel()
    try:
        channel.queue_declare(name, durable=True, arguments=arguments)
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 406:
            return False
        raise
    channel.close()
    return True


def _move(connection: Any, source: str, destination: str) -> int:
    """Move every message of ``source`` to ``destination``, acking each after its confirm."""
    channel = connection.channel()
    channel.confirm_delivery()
    moved = 0
    while True:
        method, properties, body = channel.basic_get(source, auto_ack=False)
        if method is None:
            return moved
        # mandatory + confirm: raises if the destination is missing or refuses it
        channel.basic_publish(
            exchange="",
            routing_key=destination,
            body=body,
            properties=properties,
            mandatory=True,
        )
        channel.basic_ack(method.delivery_tag)
        moved += 1


def migrate_queue(connection: Any, name: str, arguments: dict[str, Any]) -> Moved:
    """Give queue ``name`` the target ``arguments``, keeping its messages."""
    holding = HOLDING_PREFIX + name
    found = _exists(connection, name)
    if found is not None and found[1]:
        raise MigrationRefused(
            f"queue {name!r} has {found[1]} consumer(s): stop the workers first "
            "(`shopjobs worker` processes); producers' sends wait in the outbox"
        )
    held = _exists(connection, holding)
    if found is not None and _declares_as(connection, name, arguments):
        moved = _move(connection, holding, name) if held is not None else 0
        if held is not None:
            connection.channel().queue_delete(holding, if_empty=True)
        return Moved(name, moved, skipped=held is None)
    moved = 0
    if found is not None:
        connection.channel().queue_declare(holding, durable=True)
        _move(connection, name, holding)
        connection.channel().queue_delete(name, if_empty=True)
    channel = connection.channel()
    channel.queue_declare(name, durable=True, arguments=arguments)
    channel.close()
    if found is not None or held is not None:
        moved = _move(connection, holding, name)
        connection.channel().queue_delete(holding, if_empty=True)
    return Moved(name, moved, skipped=False)


def migrate(
    url: str,
    queues: list[str],
    target: QueueType,
    *,
    report: Callable[[Moved], None] = lambda moved: None,
) -> list[Moved]:
    """Migrate each canonical queue with its ``.DQ`` and ``.XQ`` to ``target``."""
    connection = amqp.connect(url)
    try:
        done = []
        for queue in queues:
            for name, arguments in (
                (xq_name(queue), target.dead_letter_arguments()),
                (queue, target.work_arguments(queue)),
                (dq_name(queue), target.work_arguments(queue)),
            ):
                moved = migrate_queue(connection, name, arguments)
                logger.info(
                    "queue %s: %s",
                    name,
                    "already " + target.describe() if moved.skipped else f"{moved.messages} moved",
                )
                report(moved)
                done.append(moved)
        return done
    finally:
        connection.close()
