"""Reading a page's query string into typed filters; anything malformed is ``InvalidInput`` (400).

The same parsing serves each HTML page and its JSON twin, so a script filters as a person does.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from jobcore.errors import InvalidInput
from jobcore.models import LEDGER_STATES

MAX_TEXT = 200
MAX_QUERY_STRING = 2000
MAX_ARG_TERMS = 3
RELATIVE = re.compile(r"^(\d{1,6})([smhd])$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
ARG_TERM = re.compile(r"^([A-Za-z_][A-Za-z0-9_]{0,63})=(.{1,200})$", re.DOTALL)
MAX_ID = 2**63 - 1


class Params:
    """A query string's values, checked one by one; unknown names are refused (a typo is not
    silently a filter that matches everything)."""

    def __init__(self, items: Sequence[tuple[str, str]], known: Sequence[str]) -> None:
        self._items = [(k, v) for k, v in items if v != ""]
        unknown = sorted({k for k, _ in self._items} - set(known))
        if unknown:
            raise InvalidInput(f"unknown filter {', '.join(unknown)}; known: {', '.join(known)}")

    def all(self, name: str) -> list[str]:
        return [v for k, v in self._items if k == name]

    def one(self, name: str) -> str | None:
        values = self.all(name)
        if len(values) > 1:
            raise InvalidInput(f"{name} given {len(values)} times; give it once")
        value = values[0].strip() if values else None
        if value is not None and len(value) > MAX_TEXT:
            raise InvalidInput(f"{name} is longer than {MAX_TEXT} characters")
        return value or None

    def integer(self, name: str, *, low: int = 1, high: int = MAX_ID) -> int | None:
        raw = self.one(name)
        if raw is None:
            return None
        try:
            value = int(raw)
        except ValueError:
            raise InvalidInput(f"{name} must be a whole number, not {raw[:40]!r}") from None
        if not low <= value <= high:
            raise InvalidInput(f"{name} must be between {low} and {high}")
        return value

    def choice(self, name: str, options: Sequence[str]) -> str | None:
        raw = self.one(name)
        if raw is not None and raw not in options:
            raise InvalidInput(f"{name} must be one of {', '.join(options)}, not {raw[:40]!r}")
        return raw

    def moment(self, name: str, now: dt.datetime) -> dt.datetime | None:
        """An ISO time, or how long ago: 90s, 15m, 2h, 3d."""
        raw = self.one(name)
        if raw is None:
            return None
        match = RELATIVE.match(raw)
        if match:
            return now - dt.timedelta(seconds=int(match[1]) * UNITS[match[2]])
        try:
            parsed = dt.datetime.fromisoformat(raw)
        except ValueError:
            raise InvalidInput(
                f"{name} must be an ISO time or like 15m, 2h, 3d; not {raw[:40]!r}"
            ) from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)

    def flag(self, name: str) -> bool:
        return self.choice(name, ("0", "1", "on", "true", "false")) in ("1", "on", "true")


@dataclasses.dataclass(frozen=True)
class JobFilter:
    state: str | None = None
    actor: str | None = None
    queue: str | None = None
    order_id: int | None = None
    user_id: int | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    args: tuple[tuple[str, Any], ...] = ()
    error: str | None = None
    raw: tuple[tuple[str, str], ...] = ()  # as given, for links and the bulk preview

    @property
    def empty(self) -> bool:
        return not self.raw


JOB_FILTERS = ("state", "actor", "queue", "order", "user", "since", "until", "arg", "error")
PAGING = ("after", "limit")


def job_filter(params: Params, now: dt.datetime) -> JobFilter:
    terms = []
    for term in params.all("arg")[: MAX_ARG_TERMS + 1]:
        match = ARG_TERM.match(term.strip())
        if not match:
            raise InvalidInput('arg must look like name=value, e.g. order_id=42 or kind="daily"')
        terms.append((match[1], _json_value(match[2])))
    if len(terms) > MAX_ARG_TERMS:
        raise InvalidInput(f"at most {MAX_ARG_TERMS} arg terms")
    found = JobFilter(
        state=params.choice("state", LEDGER_STATES),
        actor=params.one("actor"),
        queue=params.one("queue"),
        order_id=params.integer("order"),
        user_id=params.integer("user"),
        since=params.moment("since", now),
        until=params.moment("until", now),
        args=tuple(terms),
        error=params.one("error"),
    )
    if found.since and found.until and found.since >= found.until:
        raise InvalidInput("since must be before until")
    raw = tuple((k, v) for k in JOB_FILTERS for v in params.all(k))
    return dataclasses.replace(found, raw=raw)


def _json_value(raw: str) -> Any:
    """``42`` is a number, ``true`` a boolean, ``"x"`` or ``x`` a string."""
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if isinstance(value, str | int | float | bool) else raw


def encode_cursor(*parts: Any) -> str:
    raw = json.dumps([p.isoformat() if isinstance(p, dt.datetime) else p for p in parts])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(raw: str | None, shape: Sequence[type]) -> list[Any] | None:
    """A cursor back into typed parts; anything that is not one of ours is a 400."""
    if raw is None:
        return None
    try:
        parts = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        if not isinstance(parts, list) or len(parts) != len(shape):
            raise ValueError
        out: list[Any] = []
        for part, kind in zip(parts, shape):
            if kind is dt.datetime:
                out.append(dt.datetime.fromisoformat(part))
            elif kind is int:
                if not isinstance(part, int) or isinstance(part, bool) or not 0 <= part <= MAX_ID:
                    raise ValueError
                out.append(part)
            else:
                if not isinstance(part, str) or len(part) > 64:
                    raise ValueError
                out.append(part)
        return out
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(
            "the page cursor 'after' is malformed; start from the first page"
        ) from None


def limit_of(params: Params, default: int = 50) -> int:
    return params.integer("limit", low=1, high=500) or default


def query_string(items: Sequence[tuple[str, str]], **extra: Any) -> str:
    from urllib.parse import urlencode

    pairs = list(items) + [(k, str(v)) for k, v in extra.items() if v is not None]
    return urlencode(pairs)


def mapping_items(query: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(k, str(v)) for k, v in query.items()]
