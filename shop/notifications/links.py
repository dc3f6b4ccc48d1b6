"""Signed, expiring e-mail verification links: HMAC-SHA256 over (purpose, user, expiry).

Nothing is stored: the link carries the user id and the expiry, and only a holder of the
secret (``SHOPJOBS_VERIFICATION_SECRET``) can make a signature that ``verify_token`` accepts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from jobcore.errors import InvalidInput

PURPOSE = "verify-email"


def _signature(secret: str, user_id: int, expires: int) -> str:
    mac = hmac.new(
        secret.encode(), f"{PURPOSE}:{user_id}:{expires}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def make_token(secret: str, user_id: int, ttl_s: int, now: float | None = None) -> str:
    """``<user>.<expiry>.<signature>``: URL-safe, verifiable without a database row."""
    expires = int((time.time() if now is None else now) + ttl_s)
    return f"{user_id}.{expires}.{_signature(secret, user_id, expires)}"


def verify_token(secret: str, token: str, now: float | None = None) -> int:
    """Return the user id of a valid token; raise ``InvalidInput`` saying why it is not."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        raise InvalidInput("malformed verification token")
    user_id, expires = int(parts[0]), int(parts[1])
    if not hmac.compare_digest(parts[2], _signature(secret, user_id, expires)):
        raise InvalidInput("verification token signature does not match")
    if (time.time() if now is None else now) > expires:
        raise InvalidInput("verification link has expired; ask for a new one")
    return user_id


def verification_url(base_url: str, secret: str, user_id: int, ttl_s: int) -> str:
    return f"{base_url.rstrip('/')}/verify-email?token={make_token(secret, user_id, ttl_s)}"
