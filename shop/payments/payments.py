"""Charging, refunding and voiding through the provider, exactly once per key.

One charge per order: the provider's idempotency key is the order's, so a retried or duplicated
step gets the same charge back. Local state changes are conditional updates; the provider is
called outside any open transaction, so no lock is held across the network.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from jobcore.db import affected, session_scope
from jobcore.errors import InvalidInput, NotFound, PermanentError
from shop.integrations import providers
from shop.models import Order, Payment, Refund
from shop.orders.lookup import open_order

logger = logging.getLogger(__name__)


class RefundNotAllowed(PermanentError):
    """The refund would exceed what was captured, or the payment was never captured."""


def charge_key(order_id: int) -> str:
    return f"order-{order_id}"


def charge_order(order_id: int) -> str:
    """Take the order's payment; returns the payment status ('captured')."""
    with session_scope() as s:
        order = open_order(s, order_id)
        s.execute(
            insert(Payment)
            .values(
                order_id=order_id,
                idempotency_key=charge_key(order_id),
                amount_cents=order.total_cents,
                currency=order.currency,
                status="pending",
            )
            .on_conflict_do_nothing(index_elements=["order_id"])
        )
        payment = s.scalars(select(Payment).where(Payment.order_id == order_id)).one()
        if payment.status == "captured":
            return "captured"
        if payment.status in ("declined", "voided", "refunded"):
            raise InvalidInput(f"payment of order {order_id} is {payment.status}")
        amount, currency, token, key = (
            payment.amount_cents,
            payment.currency,
            order.payment_token,
            payment.idempotency_key,
        )
    from shop.integrations.http_clients import PaymentDeclined

    try:
        charge = providers.payments().charge(order_id, amount, currency, token, key)
    except PaymentDeclined as exc:
        with session_scope() as s:
            s.execute(
                update(Payment)
                .where(Payment.order_id == order_id, Payment.status == "pending")
                .values(status="declined", failure_reason=str(exc)[:500])
            )
        raise
    status = charge.get("status", "captured")
    with session_scope() as s:
        s.execute(
            update(Payment)
            .where(Payment.order_id == order_id, Payment.status == "pending")
            .values(status=status, provider_charge_id=charge["id"])
        )
        s.execute(
            update(Order)
            .where(Order.id == order_id, Order.status == "pending")
            .values(status="paid")
        )
    logger.info("payment %s for order %r", status, order_id)
    return status


@dataclass
class RefundResult:
    refund_id: int
    amount_cents: int
    status: str


def refund_payment(
    payment_id: int, amount_cents: int, reason: str, request_key: str
) -> RefundResult:
    """Refund part or all of a captured payment, once per ``request_key``.

    The amount is reserved against the payment by a conditional update (refunds never add up
    to more than was captured), then the provider is called with the same key.
    """
    with session_scope() as s:
        existing = s.scalars(select(Refund).where(Refund.request_key == request_key)).first()
        if existing is None:
            reserved = s.execute(
                update(Payment)
                .where(
                    Payment.id == payment_id,
                    Payment.status.in_(("captured", "partially_refunded")),
                    Payment.refunded_cents + amount_cents <= Payment.amount_cents,
                )
                .values(refunded_cents=Payment.refunded_cents + amount_cents)
                .returning(Payment.provider_charge_id)
            ).first()
            if reserved is None:
                if s.get(Payment, payment_id) is None:
                    raise NotFound(f"payment {payment_id} does not exist")
                raise RefundNotAllowed(
                    f"refund of {amount_cents} on payment {payment_id} exceeds what is left, or it was not captured"
                )
            existing = Refund(
                payment_id=payment_id,
                request_key=request_key,
                amount_cents=amount_cents,
                reason=reason,
            )
            s.add(existing)
            s.flush()
        if existing.status == "completed":
            return RefundResult(existing.id, existing.amount_cents, "completed")
        refund_id, amount, charge_id = (
            existing.id,
            existing.amount_cents,
            s.get_one(Payment, payment_id).provider_charge_id,
        )
    result = providers.payments().refund(charge_id, amount, reason, request_key)
    with session_scope() as s:
        s.execute(
            update(Refund)
            .where(Refund.id == refund_id)
            .values(status="completed", provider_refund_id=result["id"])
        )
        s.execute(
            update(Payment)
            .where(Payment.id == payment_id)
            .values(status=_refund_status(s.get_one(Payment, payment_id)))
        )
    return RefundResult(refund_id, amount, "completed")


def _refund_status(payment: Payment) -> str:
    return "refunded" if payment.refunded_cents >= payment.amount_cents else "partially_refunded"


def give_back_order_payment(order_id: int, reason: str) -> str:
    """Compensation: refund what the order's payment captured (or void an authorisation).

    A payment still ``pending`` may hide a charge whose answer timed out: the provider is asked
    by the charge's idempotency key first, and what it took is given back like any other.
    """
    with session_scope() as s:
        payment = s.scalars(select(Payment).where(Payment.order_id == order_id)).first()
        if payment is None or payment.status in ("declined", "voided"):
            return "nothing taken"
        pending_key = payment.idempotency_key if payment.status == "pending" else None
    if pending_key is not None and not _settle_pending(order_id, pending_key, reason):
        return "nothing taken"
    with session_scope() as s:
        payment = s.scalars(select(Payment).where(Payment.order_id == order_id)).one()
        payment_id, status, left = (
            payment.id,
            payment.status,
            payment.amount_cents - payment.refunded_cents,
        )
        charge_id = payment.provider_charge_id
    if status == "authorized":
        providers.payments().void(charge_id)
        with session_scope() as s:
            s.execute(
                update(Payment)
                .where(Payment.id == payment_id, Payment.status == "authorized")
                .values(status="voided")
            )
        return "voided"
    if left <= 0:
        return "already refunded"
    refund_payment(payment_id, left, reason, request_key=f"compensate-order-{order_id}")
    return "refunded"


def _settle_pending(order_id: int, key: str, reason: str) -> bool:
    """Record what a pending payment really is at the provider; True when money was taken."""
    charge = providers.payments().find_charge(key)
    with session_scope() as s:
        if charge is None:
            s.execute(
                update(Payment)
                .where(Payment.order_id == order_id, Payment.status == "pending")
                .values(status="voided", failure_reason=reason[:500])
            )
            return False
        s.execute(
            update(Payment)
            .where(Payment.order_id == order_id, Payment.status == "pending")
            .values(status=charge["status"], provider_charge_id=charge["id"])
        )
    logger.warning(
        "order %r: a charge that timed out had gone through (%s); giving it back",
        order_id,
        charge["id"],
    )
    return True


def apply_webhook_event(provider: str, event_id: str) -> tuple[str, int | None]:
    """Apply a stored provider event once; returns what it changed (kept on the event row)
    and the order it concerns."""
    from shop.models import PaymentEvent

    with session_scope() as s:
        event = s.scalars(
            select(PaymentEvent).where(
                PaymentEvent.provider == provider, PaymentEvent.event_id == event_id
            )
        ).first()
        if event is None:
            raise NotFound(f"no stored {provider} event {event_id}")
        data = event.payload.get("data") or {}
        order_id = data.get("order_id") if isinstance(data.get("order_id"), int) else None
        if event.processed_at is not None:
            return "already processed", order_id
        outcome = "ignored"
        if order_id is not None and event.event_type in ("charge.succeeded", "charge.captured"):
            changed = affected(
                s.execute(
                    update(Payment)
                    .where(Payment.order_id == order_id, Payment.status == "pending")
                    .values(status="captured", provider_charge_id=data.get("id"))
                )
            )
            outcome = "payment captured" if changed else "payment already up to date"
        elif order_id is not None and event.event_type in ("charge.failed", "charge.declined"):
            changed = affected(
                s.execute(
                    update(Payment)
                    .where(Payment.order_id == order_id, Payment.status == "pending")
                    .values(
                        status="declined", failure_reason=str(data.get("reason", "declined"))[:500]
                    )
                )
            )
            outcome = "payment declined" if changed else "payment already up to date"
        elif event.event_type == "charge.refunded":
            outcome = "refund confirmed"
        s.execute(
            update(PaymentEvent)
            .where(PaymentEvent.id == event.id, PaymentEvent.processed_at.is_(None))
            .values(processed_at=func.now(), outcome=outcome)
        )
        return outcome, order_id
