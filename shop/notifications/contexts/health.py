"""Context of ``health:<component>`` notifications: which component is down, since when, why."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobcore.errors import NotFound
from shop.models import HealthCheck
from shop.ops.health import incident_start

TEMPLATES: tuple[str, ...] = ("health_component_down",)

SAMPLE: dict[str, object] = {
    "component": "warehouse",
    "down_since": "2026-11-23 14:02 UTC",
    "down_minutes": 7,
    "detail": "ConnectError: [Errno 111] Connection refused",
    "last_checked": "2026-11-23 14:09 UTC",
    "up_now": False,
}


def _stamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def load(session: Session, ident: str) -> dict[str, object]:
    """The component's latest check and the start of its current outage (if still down)."""
    last = session.scalars(
        select(HealthCheck)
        .where(HealthCheck.component == ident)
        .order_by(HealthCheck.checked_at.desc())
        .limit(1)
    ).first()
    if last is None:
        raise NotFound(f"no health checks of component {ident!r}")
    since = incident_start(session, ident) or last.checked_at
    return {
        "component": ident,
        "down_since": _stamp(since),
        "down_minutes": int((last.checked_at - since).total_seconds() // 60),
        "detail": last.detail,
        "last_checked": _stamp(last.checked_at),
        "up_now": last.up,
    }
