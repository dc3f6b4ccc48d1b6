"""QueueMatch: a real actor's message that arrives on another actor's queue is not run.

Dramatiq dispatches by actor name alone, so a message published to the wrong queue (a bug in
a producer, a hand-made replay) would run with the wrong queue's workers, limits and
priorities. Like ``AgeLimit``, it fails the message and skips it: never retried, stored as a
dead letter with the reason ``wrong_queue``.
"""

from __future__ import annotations

from dramatiq import Broker, Middleware
from dramatiq.broker import MessageProxy
from dramatiq.common import q_name
from dramatiq.errors import ActorNotFound
from dramatiq.middleware import SkipMessage


class WrongQueue(SkipMessage):
    """The message's queue is not its actor's."""


class QueueMatch(Middleware):
    """Fails and skips a message whose (canonical) queue is not its actor's queue."""

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        try:
            actor = broker.get_actor(message.actor_name)
        except ActorNotFound:
            return  # the worker rejects it as an unknown actor
        queue = message.queue_name
        if queue != actor.queue_name and (queue := q_name(queue)) != actor.queue_name:
            message.fail()
            raise WrongQueue(
                f"{message.actor_name} runs on queue {actor.queue_name!r}, not {queue!r}: not run"
            )
