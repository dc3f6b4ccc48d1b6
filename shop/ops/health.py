"""The health check: probe every component at once, store the results, export them as metrics,
and tell the administrators once per incident when a component stays down too long.

An incident starts at a component's first failed check after its last good one; its alert is
the notification ``health_component_down`` keyed ``health:<component>#<incident start epoch>``,
so repeated checks during one outage alert once and the next outage alerts again.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prometheus_client import Gauge
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jobcore.db import session_scope
from shop.models import HealthCheck
from shop.notifications.notifications import request_notification
from shop.ops import health_probes
from shop.settings import Settings

logger = logging.getLogger(__name__)

ALERT_TEMPLATE = "health_component_down"

HEALTH_UP = Gauge(
    "shopjobs_health_up",
    "1 when the component's last health check passed, else 0",
    ["component"],
    multiprocess_mode="mostrecent",
)
HEALTH_LATENCY = Gauge(
    "shopjobs_health_latency_seconds",
    "how long the component's last health probe took",
    ["component"],
    multiprocess_mode="mostrecent",
)


def probe_all(settings: Settings, components: list[str] | None = None) -> list[dict[str, Any]]:
    """Run the probes in parallel, so one hanging component costs one timeout, not the sum."""
    names = components or list(health_probes.PROBES)
    unknown = sorted(set(names) - set(health_probes.PROBES))
    if unknown:
        raise ValueError(
            f"unknown health components {unknown}; known: {sorted(health_probes.PROBES)}"
        )
    with ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="health") as pool:
        return list(pool.map(lambda name: _probe(name, settings), names))


def _probe(name: str, settings: Settings) -> dict[str, Any]:
    started = time.monotonic()
    try:
        detail, up = health_probes.PROBES[name](settings), True
    except Exception as exc:  # noqa: BLE001  (any failure of a probe is its answer: down, and why)
        detail, up = f"{type(exc).__name__}: {str(exc).strip() or 'no detail'}"[:500], False
    return {
        "component": name,
        "up": up,
        "latency_ms": round((time.monotonic() - started) * 1000, 1),
        "detail": detail,
        "checked_at": dt.datetime.now(dt.UTC),
    }


def health_check(settings: Settings, results: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Probe (unless ``results`` are given), export metrics, store, alert; names what is down and why."""
    results = probe_all(settings) if results is None else results
    for r in results:
        HEALTH_UP.labels(component=r["component"]).set(1 if r["up"] else 0)
        HEALTH_LATENCY.labels(component=r["component"]).set(r["latency_ms"] / 1000)
    alerted: list[str] = []
    with session_scope() as s:
        s.add_all(HealthCheck(**r) for r in results)
        s.flush()
        for r in results:
            if not r["up"] and _alert_if_long(
                s, r["component"], settings.health_alert_after_s, r["checked_at"]
            ):
                alerted.append(r["component"])
    down = {r["component"]: r["detail"] for r in results if not r["up"]}
    if down:
        logger.warning("health check: down %s", sorted(down))
    return {
        "up": not down,
        "down": down,
        "alerted": alerted,
        "latency_ms": {r["component"]: r["latency_ms"] for r in results},
    }


def incident_start(s: Session, component: str) -> dt.datetime | None:
    """When the component's current outage began (None when its last check passed)."""
    last_up = (
        select(func.max(HealthCheck.checked_at))
        .where(HealthCheck.component == component, HealthCheck.up)
        .scalar_subquery()
    )
    return s.scalar(
        select(func.min(HealthCheck.checked_at)).where(
            HealthCheck.component == component,
            ~HealthCheck.up,
            HealthCheck.checked_at > func.coalesce(last_up, dt.datetime(1970, 1, 1, tzinfo=dt.UTC)),
        )
    )


def _alert_if_long(s: Session, component: str, after_s: int, now: dt.datetime) -> bool:
    started = incident_start(s, component)
    if started is None or (now - started).total_seconds() < after_s:
        return False
    created = request_notification(
        s,
        template=ALERT_TEMPLATE,
        user_id=None,
        entity_key=f"health:{component}#{int(started.timestamp())}",
    )
    if created is not None:
        logger.error(
            "health: %s down since %s; administrators alerted", component, started.isoformat()
        )
    return created is not None


def latest(s: Session) -> list[HealthCheck]:
    """Each component's most recent stored check."""
    newest = (
        select(HealthCheck.component, func.max(HealthCheck.id).label("id"))
        .group_by(HealthCheck.component)
        .subquery()
    )
    return list(
        s.scalars(
            select(HealthCheck)
            .join(newest, newest.c.id == HealthCheck.id)
            .order_by(HealthCheck.component)
        )
    )
