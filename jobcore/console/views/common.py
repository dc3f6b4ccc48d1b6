"""Helpers the views share: a bounded read session, query parameters, HTML or JSON."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from jobcore.console.filters import Params
from jobcore.console.web import Console, console_of, wants_json
from jobcore.db import session_scope
from jobcore.models import LedgerEntry
from jobcore.redaction import scrub_text

logger = logging.getLogger(__name__)
_cache: dict[Any, tuple[float, Any]] = {}
_cache_lock = threading.Lock()


def shared(key: Any, ttl_s: float, compute: Callable[[], Any]) -> Any:
    """``compute()``, shared by every tab for ``ttl_s``: many open overviews cost one query set."""
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and now - hit[0] < ttl_s:
            return hit[1]
    value = compute()
    with _cache_lock:
        _cache[key] = (now, value)
    return value


_may_read_as: dict[tuple[int, str], bool] = {}


def _read_role(s: Session, role: str) -> bool:
    """Whether this process's login may ``SET ROLE role`` (asked once per process and role)."""
    key = (os.getpid(), role)
    if key not in _may_read_as:
        member = s.execute(
            text(
                "SELECT pg_has_role(current_user, r.oid, 'MEMBER') FROM pg_roles r "
                "WHERE r.rolname = :role"
            ),
            {"role": role},
        ).scalar()
        _may_read_as[key] = bool(member)
        if not member:
            logger.warning(
                "console pages read as the console's own login: it is not a member of %r "
                "(GRANT %s TO shopjobs_app, see docs/roles.md)",
                role,
                role,
            )
    return _may_read_as[key]


@contextmanager
def reading(request: Request) -> Iterator[Session]:
    """A session whose statements give up after the console's timeout (a 503, not a stuck page),
    run as the read-only role where the login may take it: a page, whoever asks for it, can
    read and nothing more, whatever a bug in its query would do."""
    c = console_of(request)
    with session_scope() as s:
        s.execute(text(f"SET LOCAL statement_timeout = {int(c.console.statement_timeout_ms)}"))
        role = c.console.read_role
        if role and _read_role(s, role):
            s.execute(text(f'SET LOCAL ROLE "{role}"'))  # a checked name (settings), not input
        yield s


def params(request: Request, known: Sequence[str]) -> Params:
    return Params(request.query_params.multi_items(), known)


def respond(request: Request, template: str, data: Any, **context: Any) -> Response:
    """The page, or for ``.json`` (or Accept: application/json) the same data as JSON."""
    if wants_json(request):
        return JSONResponse(jsonable(data))
    c: Console = console_of(request)
    return c.render(request, template, **context)


def jsonable(value: Any) -> Any:
    if isinstance(value, LedgerEntry):
        return job_json(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return scrub_text(value[:256].decode("utf-8", "replace"))
    if hasattr(value, "__table__"):
        return {
            c.key: jsonable(getattr(value, c.key))
            for c in value.__table__.columns
            if c.key not in ("body", "password_hash")
        }
    return value


def job_json(row: LedgerEntry, full: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in LedgerEntry.__table__.columns:
        if not full and column.key in ("traceback", "args"):
            continue
        value = getattr(row, column.key)
        if column.key in ("error", "traceback") and value:
            value = scrub_text(value)
        out[column.key] = value.isoformat() if isinstance(value, dt.datetime) else value
    return out
