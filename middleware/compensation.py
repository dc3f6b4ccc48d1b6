"""Compensation: when a step fails for good, start the undo of what came before it.

Dramatiq's ``on_failure`` callback fires on every failed attempt, retried or not; a saga must
compensate only once the step has failed for good (a permanent error, or retries exhausted).
This middleware sits above Retries in the stack, so its ``after_process_message`` runs after
Retries has decided, and sends ``compensate_with`` only when the message is marked failed.
"""

from __future__ import annotations

from typing import Any

from dramatiq import Broker, Middleware
from dramatiq.broker import MessageProxy

from jobcore.metrics.failures import counts_failures


@counts_failures
class Compensation(Middleware):
    """Sends the actor named by the ``compensate_with`` option ``(subject_id, reason, failed_step)``.

    ``subject_id`` is the failed message's first argument (the order id for order steps).
    """

    @property
    def actor_options(self) -> set[str]:
        return {"compensate_with"}

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None or not message.failed:
            return
        actor = broker.get_actor(message.actor_name)
        target = message.options.get("compensate_with") or actor.options.get("compensate_with")
        if not target or not message.args:
            return
        reason = f"{message.actor_name} failed: {type(exception).__name__}: {exception}"[:480]
        broker.get_actor(target).send(message.args[0], reason, message.actor_name)
