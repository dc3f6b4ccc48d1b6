"""Payment actors: validation (the pipeline's first step), refunds and provider webhooks."""

from __future__ import annotations

from dramatiq.middleware import CurrentMessage

from actors.orders import process_order_async
from actors.retry_after import honour_retry_after
from broker import routes
from jobcore.validate import minor_units, positive_id, text
from shop.payments import payments


@routes.actor("payments.validate_payment")
@honour_retry_after
def validate_payment(order_id: int) -> None:
    """Charge the order once (the provider's idempotency key is the order's)."""
    payments.charge_order(positive_id(order_id, "order_id"))


@routes.actor("payments.process_refund_async")
@honour_retry_after
def process_refund_async(payment_id: int, amount: int, reason: str) -> None:
    """Refund ``amount`` minor units; one refund per request (keyed by this message)."""
    positive_id(payment_id, "payment_id")
    minor_units(amount, "amount")
    text(reason, "reason")
    message = CurrentMessage.get_current_message()
    assert message is not None  # CurrentMessage is in the stack; set while an actor runs
    payments.refund_payment(payment_id, amount, reason, request_key=f"refund-{message.message_id}")


@routes.actor("payments.handle_payment_webhook")
def handle_payment_webhook(provider: str, event_id: str) -> None:
    """Apply a verified, stored provider event (the endpoint verified its signature)."""
    outcome, order_id = payments.apply_webhook_event(
        text(provider, "provider", max_len=32), text(event_id, "event_id", max_len=64)
    )
    if outcome == "payment captured" and order_id is not None:
        # a payment confirmed out of band lets a waiting order go on
        process_order_async.send(order_id)
