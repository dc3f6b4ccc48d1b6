"""The HTTP endpoint that receives the payment provider's webhooks (Starlette on uvicorn).

It verifies the signature over the raw body, stores the event once per provider event id and
enqueues its processing in the same transaction, then answers at once; the work happens in
``payments.handle_payment_webhook``. A forged, tampered or stale request is answered 400 and
writes nothing; a replay of a stored event is answered 200 and changes nothing.

Run: ``python -m programs.webhooks --port 8100`` (prints ``READY webhooks http://...``).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from jobcore import outbox
from jobcore.db import session_scope
from shop.models import PaymentEvent
from shop.payments import webhook_signing

logger = logging.getLogger(__name__)
MAX_BODY_BYTES = 256 * 1024
PROVIDERS = ("standin",)


def _store(provider: str, event: dict[str, Any]) -> str:
    with session_scope() as s:
        stored = s.execute(
            insert(PaymentEvent)
            .values(provider=provider, event_id=event["id"], event_type=event["type"], payload=event)
            .on_conflict_do_nothing(constraint="uq_payment_events_provider_event")
            .returning(PaymentEvent.id)
        ).first()
        if stored is None:
            return "duplicate"
        outbox.enqueue(s, "payments.handle_payment_webhook", provider, event["id"])
    return "accepted"


async def receive(request: Request) -> JSONResponse:
    provider = request.path_params["provider"]
    if provider not in PROVIDERS:
        return JSONResponse({"error": "unknown_provider"}, status_code=404)
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return JSONResponse({"error": "too_large"}, status_code=413)
    secret = request.app.state.secret
    try:
        event = webhook_signing.verify(secret, body, request.headers.get(webhook_signing.HEADER))
    except webhook_signing.SignatureError as exc:
        logger.warning("webhook from %r rejected: %s", provider, exc.reason)
        return JSONResponse({"error": exc.reason}, status_code=400)
    if not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str) or len(event["id"]) > 64:
        return JSONResponse({"error": "invalid_event"}, status_code=400)
    status = await run_in_threadpool(_store, provider, event)
    return JSONResponse({"status": status}, status_code=200)


def build_app(secret: str) -> Starlette:
    app = Starlette(routes=[Route("/webhooks/{provider}", receive, methods=["POST"])])
    app.state.secret = secret
    return app
