"""DeadLetters: a message that fails for good is stored, with its error, before it is rejected.

Dramatiq moves such a message to its queue's .XQ, which expires and keeps neither the
exception nor the traceback. ``before_nack`` runs for every rejection (retries exhausted, a
permanent error, an unknown actor, the age limit, a crash loop), so the row is written before
the message leaves; bodies that cannot even be decoded are stored by the consumer
(``jobcore.acks``), which sees them first.
"""

from __future__ import annotations

import traceback
from typing import Any

from dramatiq import Broker, Middleware
from dramatiq.broker import MessageProxy
from dramatiq.errors import ActorNotFound
from dramatiq.middleware import SkipMessage

from jobcore import dead_letters
from jobcore.errors import BusinessOutcome
from jobcore.metrics.failures import counts_failures
from jobcore.redaction import scrub_text
from middleware.crash_guard import CrashLoop
from middleware.queue_match import WrongQueue


def reason_for(broker: Broker, message: MessageProxy, exception: BaseException | None) -> str:
    if isinstance(exception, ActorNotFound):
        return "unknown_actor"
    if isinstance(exception, CrashLoop):
        return "crashed_worker"
    if isinstance(exception, WrongQueue):
        return "wrong_queue"
    if isinstance(exception, SkipMessage):
        return "age_limit"
    if exception is None:
        return "rejected"
    try:
        throws = message.options.get("throws") or broker.get_actor(message.actor_name).options.get(
            "throws"
        )
    except ActorNotFound:
        throws = None
    if throws and isinstance(exception, throws):
        # an expected business end (declined card, sold out) is labelled apart, for alerting
        return "business_outcome" if isinstance(exception, BusinessOutcome) else "permanent_error"
    return "failed"


@counts_failures
class DeadLetters(Middleware):
    """Stores every rejected message in ``dead_letters`` (body, reason, error, traceback, attempts)."""

    def before_nack(self, broker: Broker, message: MessageProxy) -> None:
        exception: Any = getattr(message, "_exception", None)
        reason = reason_for(broker, message, exception)
        retries = message.options.get("retries", 0)
        dead_letters.record(
            queue=message.queue_name,
            body=message.encode(),
            reason=reason,
            message_id=message.message_id,
            actor=message.actor_name,
            error=scrub_text(f"{type(exception).__name__}: {exception}")[:2000]
            if exception is not None
            else None,
            traceback=scrub_text("".join(traceback.format_exception(exception)))[-16000:]
            if exception is not None
            else None,
            # Retries counts the failed run itself; a permanent error returns before counting
            attempts=retries + 1 if reason in ("permanent_error", "business_outcome") else retries,
        )
