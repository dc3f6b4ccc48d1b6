"""Sending one SMS through the HTTP gateway (``httpx``), with an idempotency key per notification.

A retry after a lost answer sends the same key, so the gateway texts once. Timeouts, refused
connections, 429 and 5xx are ``TransientError``; 4xx (e.g. 422 invalid number) is permanent.
Errors name the status only, never the number or the text.
"""

from __future__ import annotations

import httpx

from jobcore.errors import PermanentError, TransientError
from jobcore.limits import RateLimit
from shop.integrations import outbound
from shop.settings import Settings


class SmsTransient(TransientError):
    """The gateway is down, slow or busy."""


class SmsPermanent(PermanentError):
    """The gateway refused this message for good."""


def send(settings: Settings, to: str, body: str, idempotency_key: str) -> str:
    """Send one SMS; returns the gateway's message id.

    Takes a token of the global SMS rate (``SHOPJOBS_SMS_RATE_PER_S``) first: past its wait,
    ``LimitExceeded`` retries the job with backoff."""
    RateLimit("sms", settings.sms_rate_per_s, wait_ms=settings.limit_wait_ms).take()
    timeout = httpx.Timeout(settings.http_timeout_s, connect=2.0)
    policy = outbound.Policy.for_urls(settings.outbound_allowed_hosts, settings.sms_url)
    try:
        with outbound.client(policy, timeout) as http:
            response = http.post(
                f"{settings.sms_url.rstrip('/')}/v1/messages",
                json={"to": to, "body": body},
                headers={
                    "Authorization": f"Bearer {settings.sms_api_secret}",
                    "Idempotency-Key": idempotency_key,
                },
            )
    except outbound.OutboundRefused as exc:
        raise SmsPermanent(f"SMS gateway refused by the outbound policy: {exc}") from None
    except httpx.TransportError as exc:
        raise SmsTransient(f"SMS gateway unreachable or timed out ({type(exc).__name__})") from None
    if response.status_code == 429 or response.status_code >= 500:
        raise SmsTransient(f"SMS gateway answered {response.status_code}")
    if response.status_code >= 300:  # a redirect is not followed: the gateway is misconfigured
        code = _error_code(response)
        raise SmsPermanent(f"SMS gateway refused the message: {response.status_code} {code}")
    message_id = response.json().get("id")
    if not isinstance(message_id, str):
        raise SmsTransient("SMS gateway answered without a message id")
    return message_id


def _error_code(response: httpx.Response) -> str:
    try:
        code = response.json().get("error")
    except ValueError:
        return "-"
    return code if isinstance(code, str) else "-"
