"""LogContext: the job's identity on every log line written while it runs (``jobcore.job_context``)."""

from __future__ import annotations

from typing import Any

from dramatiq import Broker, Middleware
from dramatiq.broker import MessageProxy
from dramatiq.errors import ActorNotFound

from jobcore import job_context, logs
from jobcore.ledger.args import named_args
from jobcore.metrics.failures import counts_failures
from jobcore.settings import JobSettings

BOUND_IDS = (
    "order_id",
    "user_id",
    "job_id",
    "payment_id",
    "product_id",
    "subscription_id",
    "notification_id",
)


@counts_failures
class LogContext(Middleware):
    """Configures logging in each worker process and binds message_id, actor, attempt, ids.

    Parameters:
      settings: log format and level come from here.
    """

    def __init__(self, settings: JobSettings) -> None:
        self.settings = settings

    def after_process_boot(self, broker: Broker) -> None:
        logs.configure(self.settings.log_format, self.settings.log_level, settings=self.settings)

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        eager = {
            "message_id": message.message_id,
            "actor": message.actor_name,
            "attempt": message.options.get("retries", 0) + 1,
        }
        job_context.enter(eager, lambda: _bound_ids(broker, message))

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        job_context.leave()

    after_skip_message = after_process_message


def _bound_ids(broker: Broker, message: MessageProxy) -> dict[str, Any]:
    """The business ids among the job's arguments (read at its first log line, if any)."""
    try:
        actor = broker.get_actor(message.actor_name)
    except ActorNotFound:
        actor = None
    named = named_args(actor, message)
    return {k: named[k] for k in BOUND_IDS if isinstance(named.get(k), int | str)}
