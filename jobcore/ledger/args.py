"""What of a job the ledger keeps: its arguments (named) and its return value, both redacted and
size-capped, and the business ids among its arguments."""

from __future__ import annotations

import functools
import inspect
import json
import math
import re
from typing import Any

import dramatiq
from dramatiq import Message
from dramatiq.broker import MessageProxy

from jobcore.redaction import scrub_text

SECRET_KEY = re.compile(
    r"pass(word)?|secret|token|api[_-]?key|auth|card|cvv|cvc|iban|email|e_mail|phone|address|signature",
    re.IGNORECASE,
)
REDACTED = "[redacted]"
BUSINESS_IDS = ("order_id", "user_id", "job_id")
# the ledger keeps a few KB of arguments; a longer string is cut before it is scrubbed (the
# secret patterns took minutes over a 1 MiB argument, holding up the send)
MAX_TEXT_CHARS = 4096
# one encoder: json.dumps with options builds a new one per call (half its cost on small args)
_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))


@functools.lru_cache(maxsize=1024)
def _param_names(fn: Any) -> tuple[str, ...]:
    try:
        return tuple(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return ()


@functools.lru_cache(maxsize=4096)
def _secret_key(key: str) -> bool:
    """Whether a key names a secret: parameter names repeat, so the pattern runs once each."""
    return SECRET_KEY.search(key) is not None


def redact(value: Any, depth: int = 0) -> Any:
    """Replace values under secret-looking keys and mask secrets in text, recursively (bounded depth)."""
    if depth > 8:
        return "[too deep]"
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and _secret_key(k) else redact(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v, depth + 1) for v in value]
    if isinstance(value, str):
        if len(value) > MAX_TEXT_CHARS:
            value = f"{value[:MAX_TEXT_CHARS]}...[{len(value)} characters]"
        # e-mail addresses, card numbers, tokens under harmless names; and NUL, which no
        # PostgreSQL text or jsonb value can hold (the send would fail, not the job)
        return scrub_text(value).replace("\x00", "\\x00")
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # NaN and Infinity are not JSON; keep them visible as text
    return value


def named_args(
    actor: dramatiq.Actor[Any, Any] | None, message: Message[Any] | MessageProxy
) -> dict[str, Any]:
    """Positional and keyword arguments by parameter name (``argN`` when the actor is unknown)."""
    names = _param_names(actor.fn) if actor is not None else ()
    named: dict[str, Any] = {}
    for index, value in enumerate(message.args):
        named[names[index] if index < len(names) else f"arg{index}"] = value
    named.update(message.kwargs)
    return named


def ledger_fields(
    actor: dramatiq.Actor[Any, Any] | None, message: Message[Any], max_bytes: int = 2048
) -> dict[str, Any]:
    """``args`` as JSON text (redacted, at most ``max_bytes``) plus order_id/user_id/job_id when present."""
    named = named_args(actor, message)
    fields: dict[str, Any] = {}
    for key in BUSINESS_IDS:
        value = named.get(key)
        if key == "job_id":
            fields[key] = (
                str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None
            )
        else:
            fields[key] = (
                value
                if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63
                else None
            )
    fields["args"] = capped_json(named, max_bytes)
    return fields


def capped_json(value: Any, max_bytes: int) -> str:
    """``value`` redacted, as JSON text of at most about ``max_bytes``; never raises.

    A larger value becomes a marker that says so and how big it was, with the start of its
    redacted text: the ledger row stays small, and the reader knows something was cut.
    """
    try:
        encoded = _ENCODER.encode(redact(value))
    except (TypeError, ValueError) as exc:  # keys JSON cannot take (tuples), circular values
        error = scrub_text(str(exc))[:200]
        return json.dumps({"unencodable": type(value).__name__, "error": error})
    if len(encoded) > max_bytes:
        encoded = json.dumps(
            {"truncated": True, "bytes": len(encoded), "preview": encoded[: max_bytes // 2]}
        )
    return encoded


def result_json(value: Any, max_bytes: int) -> str | None:
    """A job's return value for the ledger (None stays NULL: nothing was returned)."""
    return None if value is None else capped_json(value, max_bytes)
