"""The HTTP endpoint that receives the payment provider's webhooks (Starlette on uvicorn).

It verifies the signature over the raw body, stores the event once per provider event id and
enqueues its processing in the same transaction, then answers at once; the work happens in
``payments.handle_payment_webhook``. A forged, tampered or stale request is answered 400 and
writes nothing; a replay of a stored event is answered 200 and changes nothing.

Run: ``python -m programs.webhooks --port 8100`` (prints ``READY webhooks http://...``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy.dialects.postgresql import insert
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from jobcore import outbox
from jobcore.db import session_scope
from shop.models import PaymentEvent
from shop.payments import webhook_signing

logger = logging.getLogger(__name__)
MAX_BODY_BYTES = 256 * 1024
PROVIDERS = ("standin",)


class BodyTooLarge(Exception):
    """The body passed the limit while it streamed in: answer 413 and read no further."""


def _requests_counter(registry: CollectorRegistry) -> Counter:
    return Counter(
        "shopjobs_webhook_requests",
        "Webhook requests by provider and outcome (accepted, duplicate, or the rejection's cause)",
        ["provider", "outcome"],
        registry=registry,
    )


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, read chunk by chunk with a running total: past ``limit`` it stops reading.

    ``request.body()`` would buffer whatever arrives (a 300 MB POST grew the process by
    576 MB before its 413); here memory stays within ``limit`` plus one chunk.
    """
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge
    return bytes(body)


def _declared_too_large(request: Request, limit: int) -> bool | None:
    """True when Content-Length is over ``limit``, None when it is not a number."""
    declared = request.headers.get("content-length")
    if declared is None:
        return False
    if not declared.isdigit():
        return None
    return int(declared) > limit


def _store(provider: str, event: dict[str, Any]) -> str:
    with session_scope() as s:
        stored = s.execute(
            insert(PaymentEvent)
            .values(
                provider=provider, event_id=event["id"], event_type=event["type"], payload=event
            )
            .on_conflict_do_nothing(constraint="uq_payment_events_provider_event")
            .returning(PaymentEvent.id)
        ).first()
        if stored is None:
            return "duplicate"
        outbox.enqueue(s, "payments.handle_payment_webhook", provider, event["id"])
    return "accepted"


def _reject(request: Request, provider: str, cause: str, status: int) -> JSONResponse:
    request.app.state.requests.labels(provider, cause).inc()
    logger.warning("webhook from %r rejected: %s", provider, cause)
    return JSONResponse({"error": cause}, status_code=status)


async def receive(request: Request) -> JSONResponse:
    provider = request.path_params["provider"]
    if provider not in PROVIDERS:
        return _reject(request, "unknown", "unknown_provider", 404)
    too_large = _declared_too_large(request, MAX_BODY_BYTES)
    if too_large is None:
        return _reject(request, provider, "bad_content_length", 400)
    if too_large:  # decided on the header: not one byte of the body is read
        return _reject(request, provider, "too_large", 413)
    try:
        body = await read_limited(request, MAX_BODY_BYTES)
    except BodyTooLarge:  # no or a false Content-Length: the running total caught it
        return _reject(request, provider, "too_large", 413)
    try:
        event = webhook_signing.verify(
            request.app.state.secrets, body, request.headers.get(webhook_signing.HEADER)
        )
    except webhook_signing.SignatureError as exc:
        return _reject(request, provider, exc.reason, 400)
    if (
        not isinstance(event.get("id"), str)
        or not isinstance(event.get("type"), str)
        or len(event["id"]) > 64
    ):
        return _reject(request, provider, "invalid_event", 400)
    status = await run_in_threadpool(_store, provider, event)
    request.app.state.requests.labels(provider, status).inc()
    logger.info("webhook %r from %r %s", event["id"], provider, status)
    return JSONResponse({"status": status}, status_code=200)


async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)


def build_app(secrets: str | Sequence[str]) -> Starlette:
    """The endpoint; ``secrets`` are the active verification secrets (several while rotating)."""
    active = (secrets,) if isinstance(secrets, str) else tuple(secrets)
    if not active or not all(active):
        raise ValueError("the webhook endpoint needs at least one non-empty secret")
    app = Starlette(
        routes=[
            Route("/webhooks/{provider}", receive, methods=["POST"]),
            Route("/metrics", metrics, methods=["GET"]),
        ]
    )
    app.state.secrets = active
    app.state.registry = CollectorRegistry()
    app.state.requests = _requests_counter(app.state.registry)
    return app
