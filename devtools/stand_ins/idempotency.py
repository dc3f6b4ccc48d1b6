"""Idempotency keys as payment providers implement them: a retry gets the first answer back.

The same key with the same body replays the stored reply (header ``Idempotent-Replayed: true``);
the same key with a different body is a client bug and gets 409, never a second effect.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from devtools.stand_ins.http_base import HttpError, Reply, Request

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


def require_key(request: Request) -> str:
    """The request's idempotency key; 400 if missing, as a retry without one could charge twice."""
    key = (request.headers.get(HEADER) or "").strip()
    if not key:
        raise HttpError(400, "idempotency_key_required", f"send an {HEADER} header")
    if len(key) > MAX_KEY_LENGTH:
        raise HttpError(400, "idempotency_key_too_long", f"at most {MAX_KEY_LENGTH} characters")
    return key


def fingerprint(body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class IdempotencyStore:
    """Replies by (scope, key). Not locked itself: callers hold the app's lock around
    lookup-then-remember, so two concurrent first attempts cannot both take effect."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], tuple[str, Reply]] = {}

    def clear(self) -> None:
        self._entries.clear()

    def lookup(self, scope: str, key: str, body: Any) -> Reply | None:
        """The stored reply for a replay, ``None`` for a first attempt; 409 on a reused key."""
        entry = self._entries.get((scope, key))
        if entry is None:
            return None
        stored_fingerprint, reply = entry
        if stored_fingerprint != fingerprint(body):
            raise HttpError(
                409,
                "idempotency_key_reused",
                "this key was used with a different request body; use a new key",
            )
        return Reply(
            reply.status,
            json.loads(json.dumps(reply.body)),
            {**reply.headers, "Idempotent-Replayed": "true"},
        )

    def remember(self, scope: str, key: str, body: Any, reply: Reply) -> Reply:
        # a deep copy: later changes to the object (a capture, a refund) must not alter the replay
        frozen = Reply(reply.status, json.loads(json.dumps(reply.body)), dict(reply.headers))
        self._entries[(scope, key)] = (fingerprint(body), frozen)
        return reply
