"""Masks secrets and personal data in free text (log lines, recorded errors, job arguments).

Patterns catch what has a shape (e-mail addresses, card-like digit runs, phone numbers,
``key=value`` secrets, bearer and provider tokens); exact values catch the secrets this
process was configured with (passwords in URLs, the SMTP password, webhook secrets), which
have no shape at all.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable
from typing import Any

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# 13-19 digits, single spaces or hyphens between them, standing alone: a run glued to a hyphen or
# a word character is part of an identifier (a message id like 12345678-9012-3456-b702-...), not
# a card number, and rewriting it would break the join between log lines and the ledger; a run
# right after a dot is a fraction's digits (an id such as "bad-0.4417..."), not a card either.
CARD = re.compile(r"(?<![\w.-])\d(?:[ -]?\d){12,18}(?![\w-])")
PHONE = re.compile(r"\+\d[\d \-]{7,}\d")
SECRET_IN_TEXT = re.compile(
    r"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|authorization)"
    r"(\s*[=:]\s*|['\"]\s*:\s*['\"]?)([^\s&,;'\"]+)"
)
BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
TOKEN = re.compile(
    r"\b(?:sk|pk|rk|tok|whsec|ghp|xox[abp])_[A-Za-z0-9_]{8,}|\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9._-]+"
)
URL_PASSWORD = re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^:/@\s]+:)([^@\s]+)(@)")

_known: set[str] = set()
_known_lock = threading.Lock()
MIN_SECRET_CHARS = 4


def register_secrets(values: Iterable[str | None]) -> None:
    """Mask these exact values wherever they appear (configured passwords and secrets)."""
    with _known_lock:
        _known.update(v for v in values if v and len(v) >= MIN_SECRET_CHARS)
        scrub_text.cache_clear()


def secrets_of(settings: Any) -> list[str]:
    """The secret values in a settings object: every secret field and every password in a URL.

    ``JobSettings.secret_values`` knows the fields (marked secret, or named *password*/*secret*),
    so a secret added to the settings is masked without a second list here.
    """
    found = list(settings.secret_values())
    return [s for s in found if s and s not in ("guest",)]


@functools.lru_cache(maxsize=4096)  # job arguments repeat (kinds, names); cleared on new secrets
def scrub_text(text: str) -> str:
    """Mask known secrets, key=value secrets, tokens, e-mail addresses, card and phone numbers."""
    for secret in sorted(_known, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "[secret]")
    if (
        "://" in text
    ):  # the pattern is quadratic over long runs of letters: look only if it can match
        text = URL_PASSWORD.sub(r"\1[redacted]\3", text)
    text = BEARER.sub(r"\1 [redacted]", text)  # before key=value: "Authorization: Bearer x"
    text = SECRET_IN_TEXT.sub(r"\1\2[redacted]", text)
    text = TOKEN.sub("[token]", text)
    if "@" in text:
        text = EMAIL.sub("[email]", text)
    text = CARD.sub("[number]", text)
    return PHONE.sub("[phone]", text)
