"""Signed webhook delivery for the payment stand-in, on one background thread.

Events go out in order, after the API answer (as a real provider sends them), with a few
retries; every attempt is recorded so a test can wait for delivery instead of sleeping.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from typing import Any

import httpx

from shop.payments.webhook_signing import HEADER, sign

log = logging.getLogger("devtools.stand_ins.webhooks")
BACKOFF_S = (0.1, 0.5, 2.0)  # waits between attempts; len + 1 attempts in all
MAX_RECORDED = 1000


class WebhookSender:
    """Queues events while a URL and secret are configured and delivers them signed."""

    def __init__(self, stopping: threading.Event, timeout_s: float = 2.0) -> None:
        self._stopping = stopping
        self._timeout = httpx.Timeout(timeout_s, connect=1.0)
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[int, str, str, dict[str, Any]]] = queue.Queue()
        self._generation = 0
        self._url: str | None = None
        self._secret: str | None = None
        self._deliveries: list[dict[str, Any]] = []
        self._thread: threading.Thread | None = None

    def configure(self, url: str | None, secret: str | None) -> dict[str, Any]:
        """Set (``url=None``: clear) the endpoint; events queued for an old one are dropped."""
        with self._lock:
            self._generation += 1
            self._url, self._secret = (url, secret) if url else (None, None)
            if self._url and self._thread is None:
                self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
                self._thread.start()
        return self.snapshot()

    def reset(self) -> None:
        with self._lock:
            self._deliveries.clear()
        self.configure(None, None)

    def snapshot(self) -> dict[str, Any]:
        """Config without the secret, and every delivery attempt so far."""
        with self._lock:
            return {
                "url": self._url,
                "configured": self._url is not None,
                "pending": self._queue.qsize(),
                "deliveries": list(self._deliveries),
            }

    def emit(self, event_type: str, data: dict[str, Any]) -> str | None:
        """Queue an event; returns its id, or ``None`` when no endpoint is configured."""
        with self._lock:
            if self._url is None or self._secret is None:
                return None
            created = int(time.time())
            event = {
                "id": f"evt_{uuid.uuid4().hex[:24]}",
                "type": event_type,
                "created": created,
                "data": data,
            }
            self._queue.put((self._generation, self._url, self._secret, event))
            return str(event["id"])

    def _run(self) -> None:
        with httpx.Client(timeout=self._timeout) as client:
            while not self._stopping.is_set():
                try:
                    generation, url, secret, event = self._queue.get(timeout=0.2)
                except queue.Empty:
                    continue
                self._deliver(client, generation, url, secret, event)

    def _deliver(
        self, client: httpx.Client, generation: int, url: str, secret: str, event: dict[str, Any]
    ) -> None:
        body = json.dumps(event, separators=(",", ":")).encode("utf-8")
        for attempt in range(1, len(BACKOFF_S) + 2):
            with self._lock:
                if generation != self._generation:
                    return
            status: int | None = None
            error: str | None = None
            try:
                # signed per attempt: a retry minutes later must not look stale
                headers = {
                    HEADER: sign(secret, body, int(time.time())),
                    "Content-Type": "application/json",
                }
                status = client.post(url, content=body, headers=headers).status_code
            except httpx.HTTPError as exc:
                error = type(exc).__name__
            delivered = status is not None and 200 <= status < 300
            self._record(
                {
                    "event_id": event["id"],
                    "type": event["type"],
                    "attempt": attempt,
                    "status_code": status,
                    "error": error,
                    "delivered": delivered,
                }
            )
            if delivered:
                return
            if attempt <= len(BACKOFF_S) and self._stopping.wait(BACKOFF_S[attempt - 1]):
                return
        log.warning(
            "webhook %r (%s) not delivered after %d attempts",
            event["id"],
            event["type"],
            len(BACKOFF_S) + 1,
        )

    def _record(self, delivery: dict[str, Any]) -> None:
        with self._lock:
            self._deliveries.append(delivery)
            del self._deliveries[:-MAX_RECORDED]
