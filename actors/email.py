"""E-mail actors: SMTP delivery of one notification, and the catalogue's named e-mail jobs.

Absolute imports keep the stdlib ``email`` visible. The named jobs only record a notification
(ids in, ids out); ``email.send_email`` delivers it, retried with backoff on 4xx/timeouts.
"""

from __future__ import annotations

from typing import Any

from actors.jobs import run_job_of_message
from broker import routes
from jobcore.validate import positive_id, text
from shop import job_records as job_service
from shop.notifications import delivery, requests


@routes.actor("email.send_email")
def send_email(notification_id: int) -> str:
    """Deliver one notification row by SMTP (stable Message-ID, once per template and entity)."""
    return delivery.deliver(positive_id(notification_id, "notification_id"))


@routes.actor("email.send_email_async")
def send_email_async(job_id: str) -> str:
    """Send the e-mail a Job record describes (params: template, entity_key, user_id)."""
    return run_job_of_message(job_id)


@routes.actor("email.send_email_async_gave_up")
def send_email_async_gave_up(message_data: dict[str, Any], retry_info: dict[str, Any]) -> None:
    """Retries ran out: the Job record and its notification both say failed."""
    from jobcore.db import session_scope
    from shop.models import Job

    job_id = (message_data.get("args") or [None])[0]
    if not isinstance(job_id, str):
        return
    with session_scope() as s:
        job = s.get(Job, job_id)
        params = dict(job.params) if job else {}
    error = f"gave up after {retry_info.get('retries')} retries"
    job_service.mark_failed(job_id, error)
    notification_id = requests.notification_of_job(params)
    if notification_id is not None:
        delivery.give_up(notification_id, error)


@routes.actor("email.send_order_confirmation_email")
def send_order_confirmation_email(order_id: int) -> dict[str, Any]:
    return requests.order_confirmation(positive_id(order_id, "order_id"))


@routes.actor("email.send_shipping_notification_email")
def send_shipping_notification_email(order_id: int) -> dict[str, Any]:
    """The shipped e-mail, with the tracking link."""
    return requests.shipping_notification(positive_id(order_id, "order_id"))


@routes.actor("email.send_welcome_email")
def send_welcome_email(user_id: int) -> dict[str, Any]:
    """Welcome, with a signed verification link that expires (``SHOPJOBS_VERIFICATION_TTL_S``)."""
    return requests.welcome(positive_id(user_id, "user_id"))


@routes.actor("email.send_payment_failed")
def send_payment_failed(order_id: int) -> dict[str, Any]:
    return requests.payment_failed(positive_id(order_id, "order_id"))


@routes.actor("email.send_subscription_renewal_reminder")
def send_subscription_renewal_reminder(subscription_id: int) -> dict[str, Any]:
    return requests.renewal_reminder(positive_id(subscription_id, "subscription_id"))


@routes.actor("email.send_templated_email")
def send_templated_email(user_id: int | None, template: str, entity_key: str) -> dict[str, Any]:
    """Any template to a user (or, with ``user_id=None``, to the administrators)."""
    uid = None if user_id is None else positive_id(user_id, "user_id")
    return requests.templated(
        uid,
        text(template, "template", max_len=64),
        text(entity_key, "entity_key", max_len=64),
        "email",
    )
