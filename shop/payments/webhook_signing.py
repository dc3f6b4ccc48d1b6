"""Webhook signatures: the payment stand-in signs with these, the shop's endpoint verifies them.

The scheme is Stripe's: header ``Shop-Signature: t=<unix>,v1=<hex>`` where ``<hex>`` is
HMAC-SHA256 of ``f"{t}.{raw_body}"`` keyed by the shared secret. Signing the timestamp with the
body makes a captured request useless once it is older than the tolerance (no replays), and
several ``v1=`` entries are accepted so a secret can be rotated without dropping events.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from typing import Any

from jobcore.errors import PermanentError

HEADER = "Shop-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE_S = 300


class SignatureError(PermanentError):
    """A webhook failed verification: answer 400 and do not act on it (a retry cannot fix it).

    ``reason`` is one of ``malformed_header``, ``signature_mismatch``, ``stale_timestamp``,
    ``invalid_body``, so the endpoint can count rejections by cause.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"webhook rejected ({reason}): {detail}")
        self.reason = reason


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    signed = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """Return the ``Shop-Signature`` header value for ``body`` sent at ``timestamp``."""
    if not secret:
        raise ValueError("a webhook secret must not be empty")
    return f"t={int(timestamp)},{SCHEME}={_digest(secret, body, int(timestamp))}"


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError(
                    "malformed_header", "the t= timestamp is not an integer"
                ) from None
        elif key == SCHEME:
            signatures.append(value)
    if timestamp is None:
        raise SignatureError("malformed_header", "no t= timestamp in the signature header")
    if not signatures:
        raise SignatureError("malformed_header", f"no {SCHEME}= signature in the signature header")
    return timestamp, signatures


def verify(
    secret: str | Sequence[str],
    body: bytes,
    header: str | None,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> dict[str, Any]:
    """Check ``header`` against the raw ``body`` and return the decoded event.

    Verify the bytes exactly as received: re-serialising parsed JSON changes them and breaks
    the signature. Raises ``SignatureError`` on a missing, malformed, forged or stale signature.
    ``secret`` may be several active secrets (rotation on our side): a signature made with any
    one of them verifies, so the provider can switch while both are configured.
    """
    secrets = [secret] if isinstance(secret, str) else list(secret)
    if not secrets or not all(secrets):
        raise ValueError("a webhook secret must not be empty")
    if not header:
        raise SignatureError("malformed_header", f"the {HEADER} header is missing")
    timestamp, signatures = _parse(header)
    # bytes, because compare_digest refuses non-ASCII str; no short-circuit between entries
    matched = False
    for key in secrets:
        expected = _digest(key, body, timestamp).encode("ascii")
        for candidate in signatures:
            matched |= hmac.compare_digest(expected, candidate.encode("utf-8", "replace"))
    if not matched:
        raise SignatureError("signature_mismatch", "no signature matches the body and secret")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise SignatureError(
            "stale_timestamp",
            f"signed {int(current - timestamp)}s from now, tolerance is {tolerance_s}s",
        )
    try:
        event = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise SignatureError("invalid_body", "the signed body is not JSON") from None
    if not isinstance(event, dict):
        raise SignatureError("invalid_body", "the signed body is not a JSON object")
    return event
