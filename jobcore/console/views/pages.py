"""The read pages: overview, jobs, a job, an order, failures, queues, workers, audit, ledger."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

from sqlalchemy import select, text
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from jobcore import groups, worker_registry
from jobcore.console import filters
from jobcore.console.auth import Principal
from jobcore.console.queries import broker as broker_q
from jobcore.console.queries import failures as failures_q
from jobcore.console.queries import jobs as jobs_q
from jobcore.console.queries import overview as overview_q
from jobcore.console.views.common import params, reading, respond, shared
from jobcore.console.web import console_of, page
from jobcore.errors import InvalidInput, NotFound
from jobcore.models import LEDGER_STATES, AuditLog, LedgerEntry

FINISHED = ("succeeded", "failed", "dead", "skipped", "cancelled")
LEDGER_HEALTH_TTL_S = 60.0
_actors_cache: dict[str, Any] = {"at": 0.0, "names": []}
_actors_lock = threading.Lock()

DISTINCT_ACTORS = text("""
WITH RECURSIVE a(actor) AS (
  SELECT min(actor) FROM job_ledger
  UNION ALL
  SELECT (SELECT min(actor) FROM job_ledger WHERE actor > a.actor) FROM a WHERE a.actor IS NOT NULL
) SELECT actor FROM a WHERE actor IS NOT NULL LIMIT 500""")


def known_actors(request: Request) -> list[str]:
    """Actor names in the ledger, by a skip scan of the actor index (cached for a minute)."""
    with _actors_lock:
        if time.monotonic() - _actors_cache["at"] < 60:
            return list(_actors_cache["names"])
    with reading(request) as s:
        names = [r[0] for r in s.execute(DISTINCT_ACTORS)]
    with _actors_lock:
        _actors_cache.update(at=time.monotonic(), names=names)
    return names


@page()
def overview(request: Request, who: Principal) -> Response:
    p = params(request, ("window",))
    window, seconds = overview_q.window_seconds(
        p.choice("window", tuple(overview_q.WINDOWS)) or "6h"
    )
    c = console_of(request)

    def read() -> tuple[Any, ...]:
        with reading(request) as s:
            return (
                overview_q.live_counts(s),
                overview_q.recent_outcomes(s, seconds),
                overview_q.oldest_waiting(s),
                overview_q.open_dead_letters(s),
                overview_q.series(s, seconds),
                worker_registry.workers(s),
            )

    live, recent, oldest, letters, series, alive = shared(
        ("overview", window), max(2.0, c.console.live_poll_s), read
    )
    names = sorted(set(c.ext.queues) | set(live) | set(recent) | set(letters))
    queues = []
    for name in names:
        row: dict[str, Any] = {
            "queue": name,
            **{k: 0 for k in ("ready", "delayed", "running", "retrying")},
        }
        row.update(live.get(name, {}))
        for state in FINISHED:
            row[state] = recent.get(name, {}).get(state, 0)
        row["oldest_waiting_s"] = oldest.get(name)
        row["dead_letters"] = letters.get(name, 0)
        queues.append(row)
    totals = {
        k: sum(q[k] for q in queues)
        for k in ("ready", "delayed", "running", "retrying", *FINISHED, "dead_letters")
    }
    data = {
        "window": window,
        "queues": queues,
        "totals": totals,
        "series": series,
        "workers": {
            "processes": len(alive),
            "threads": sum(w.threads for w in alive),
            "busy": sum(w.running for w in alive),
        },
    }
    return respond(
        request,
        "overview.html",
        data,
        who=who,
        nav="overview",
        live=True,
        windows=list(overview_q.WINDOWS),
        **data,
    )


@page()
def jobs(request: Request, who: Principal) -> Response:
    p = params(request, (*filters.JOB_FILTERS, *filters.PAGING, "q"))
    wanted = p.one("q")
    if wanted:
        with reading(request) as s:
            found = s.get(LedgerEntry, wanted[:64])
        if found is None:
            raise NotFound(f"no job with message id {wanted[:64]!r}")
        return RedirectResponse(f"/jobs/{found.message_id}", status_code=303)
    now = dt.datetime.now(dt.UTC)
    f = filters.job_filter(p, now)
    after = filters.decode_cursor(p.one("after"), (dt.datetime, str))
    limit = filters.limit_of(p)
    with reading(request) as s:
        result = jobs_q.page(s, f, after=(after[0], after[1]) if after else None, limit=limit)
    if after and not result.rows:
        raise NotFound("no jobs after this point: the page is past the end of the list")
    next_link = None
    if result.next_after:
        next_link = "/jobs?" + filters.query_string(
            f.raw,
            after=filters.encode_cursor(*result.next_after),
            limit=limit if limit != 50 else None,
        )
    data = {"jobs": result.rows, "next": next_link}
    return respond(
        request,
        "jobs.html",
        data,
        who=who,
        nav="jobs",
        f=f,
        rows=result.rows,
        next_link=next_link,
        paged=after is not None,
        states=LEDGER_STATES,
        actors=known_actors(request),
        live=after is None,
        query=filters.query_string(f.raw),
    )


def _message_id(request: Request) -> str:
    value = request.path_params["message_id"]
    if len(value) > 64:
        raise InvalidInput("a message id has at most 64 characters")
    return value


@page()
def job(request: Request, who: Principal) -> Response:
    message_id = _message_id(request)
    with reading(request) as s:
        row = s.get(LedgerEntry, message_id)
        if row is None:
            raise NotFound(f"no job with message id {message_id!r}")
        lineage = jobs_q.lineage(s, row)
        siblings = jobs_q.neighbours(s, row)
        group = groups.progress(s, row.group_id) if row.group_id else None
    from jobcore.cancellations import CANCELLABLE
    from jobcore.console.views.common import job_json

    data = {
        "job": job_json(row, full=True),
        "replay_of": lineage.replay_of.message_id if lineage.replay_of else None,
        "replays": [r.message_id for r in lineage.replays],
        "replayed_by": [
            {"who": a.actor, "at": a.created_at, **a.details} for a in lineage.replayed_by
        ],
        "dead_letters": [d.id for d in lineage.dead_letters],
        "group": group,
    }
    return respond(
        request,
        "job.html",
        data,
        who=who,
        nav="jobs",
        row=row,
        lineage=lineage,
        siblings=siblings,
        group=group,
        cancellable=row.state in CANCELLABLE,
    )


@page()
def group(request: Request, who: Principal) -> Response:
    group_id = request.path_params["group_id"]
    if len(group_id) > 64:
        raise InvalidInput("a group id has at most 64 characters")
    with reading(request) as s:
        progress = groups.progress(s, group_id)
        if progress is None:
            raise NotFound(f"no group with id {group_id!r}")
        children = groups.children(s, group_id)
        fired = groups.fired_jobs(s, group_id)
    data = {"group": progress, "fired": fired, "children": children, "shown": len(children)}
    return respond(
        request,
        "group.html",
        data,
        who=who,
        nav="jobs",
        group=progress,
        children=children,
        fired=sorted(fired.items()),
    )


@page()
def order(request: Request, who: Principal) -> Response:
    raw = request.path_params["order_id"]
    if not raw.isdigit() or not 0 < int(raw) < filters.MAX_ID:
        raise InvalidInput(f"{raw[:40]!r} is not an order number")
    order_id = int(raw)
    c = console_of(request)
    with reading(request) as s:
        rows = jobs_q.order_timeline(s, order_id)
    if not rows:
        raise NotFound(f"no jobs recorded for {c.ext.order_label} {order_id}")
    timeline = _timeline(rows, c.ext.pipeline_steps, c.ext.compensation_actors)
    failed = next((r for r in rows if r.state in ("failed", "dead")), None)
    data = {
        "order_id": order_id,
        "jobs": rows,
        "failed_step": failed.message_id if failed else None,
    }
    return respond(
        request,
        "order.html",
        data,
        who=who,
        nav="jobs",
        order_id=order_id,
        rows=rows,
        timeline=timeline,
        failed=failed,
        live=True,
    )


def _timeline(rows: list[LedgerEntry], steps: Any, compensations: frozenset[str]) -> dict[str, Any]:
    """Bars in SVG units (the CSP forbids inline styles): wait from enqueue to start, run to end."""
    now = dt.datetime.now(dt.UTC)
    starts = [t for r in rows for t in (r.enqueued_at, r.started_at) if t]
    ends = [r.finished_at or r.state_changed_at or now for r in rows]
    t0 = min(starts or [rows[0].state_changed_at])
    t1 = max(ends + starts)
    span = max((t1 - t0).total_seconds(), 0.001)
    width = 600.0

    def x(t: dt.datetime | None) -> float:
        return 0.0 if t is None else round((t - t0).total_seconds() / span * width, 1)

    bars = []
    for r in rows:
        queued = r.enqueued_at or r.started_at or r.state_changed_at
        begun = r.started_at
        ended = r.finished_at or (r.state_changed_at if r.state in FINISHED else now)
        bars.append(
            {
                "row": r,
                "wait_x": x(queued),
                "wait_w": max(1.0, x(begun or ended) - x(queued)),
                "run_x": x(begun) if begun else None,
                "run_w": max(2.0, x(ended) - x(begun)) if begun else 0,
                "step": (list(steps).index(r.actor) + 1) if r.actor in steps else None,
                "compensation": r.actor in compensations,
            }
        )
    return {"bars": bars, "start": t0, "span_s": span, "width": width}


@page()
def failures(request: Request, who: Principal) -> Response:
    p = params(request, ("window",))
    windows = {"1h": 3600, "6h": 21600, "24h": 86400, "7d": 7 * 86400}
    window = p.choice("window", tuple(windows)) or "24h"
    now = dt.datetime.now(dt.UTC)
    since = now - dt.timedelta(seconds=windows[window])
    with reading(request) as s:
        groups, capped = failures_q.groups(s, since, now)
    data = {
        "window": window,
        "capped": capped,
        "groups": [
            {
                "fingerprint": g.key,
                "error_class": g.kind,
                "message": g.message,
                "frame": g.frame,
                "actors": sorted(g.actors),
                "count": g.count,
                "first": g.first,
                "last": g.last,
                "sample": g.sample,
                "buckets": g.buckets,
            }
            for g in groups
        ],
    }
    return respond(
        request,
        "failures.html",
        data,
        who=who,
        nav="failures",
        groups=groups,
        capped=capped,
        window=window,
        windows=list(windows),
        scan_cap=failures_q.SCAN_CAP,
        live=True,
    )


@page()
def queues(request: Request, who: Principal) -> Response:
    params(request, ())
    c = console_of(request)
    with reading(request) as s:
        oldest = overview_q.oldest_waiting(s)
        letters = overview_q.open_dead_letters(s)
        live = overview_q.live_counts(s)
    names = sorted(set(c.ext.queues) | set(oldest) | set(letters) | set(live))
    depth, problem = broker_q.depths(c.settings.amqp_url, names)
    rows = []
    for name in names:
        main, delayed, dead = (depth.get(name + sfx) for sfx in broker_q.SUFFIXES)
        rows.append(
            {
                "queue": name,
                "ready": main.messages if main else None,
                "consumers": main.consumers if main else None,
                "delayed": delayed.messages if delayed else None,
                "dead_in_xq": dead.messages if dead else None,
                "dead_letters": letters.get(name, 0),
                "oldest_waiting_s": oldest.get(name),
                "ledger_waiting": sum(live.get(name, {}).get(k, 0) for k in ("ready", "delayed")),
            }
        )
    data = {"queues": rows, "broker_error": problem}
    return respond(
        request, "queues.html", data, who=who, nav="queues", rows=rows, problem=problem, live=True
    )


@page()
def workers(request: Request, who: Principal) -> Response:
    p = params(request, ("all",))
    include_gone = p.flag("all")
    with reading(request) as s:
        views = worker_registry.workers(s, include_gone=include_gone)
    return respond(
        request,
        "workers.html",
        {"workers": views},
        who=who,
        nav="workers",
        rows=views,
        include_gone=include_gone,
        stale_s=worker_registry.STALE_S,
        live=True,
    )


@page()
def audit(request: Request, who: Principal) -> Response:
    p = params(request, ("actor", "action", "before", "limit"))
    actor, action_name = p.one("actor"), p.one("action")
    before = p.integer("before")
    limit = filters.limit_of(p)
    query = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit + 1)
    if actor:
        query = query.where(AuditLog.actor == actor)
    if action_name:
        query = query.where(AuditLog.action == action_name)
    if before:
        query = query.where(AuditLog.id < before)
    with reading(request) as s:
        rows = list(s.scalars(query))
    if before and not rows:
        raise NotFound("no audit entries after this point: the page is past the end")
    more = len(rows) > limit
    rows = rows[:limit]
    raw = [(k, v) for k, v in (("actor", actor), ("action", action_name)) if v]
    next_link = ("/audit?" + filters.query_string(raw, before=rows[-1].id)) if more else None
    return respond(
        request,
        "audit.html",
        {"entries": rows, "next": next_link},
        who=who,
        nav="audit",
        rows=rows,
        next_link=next_link,
        actor=actor,
        action_name=action_name,
        live=before is None,
    )


@page()
def ledger(request: Request, who: Principal) -> Response:
    params(request, ())
    c = console_of(request)

    def read() -> dict[str, Any]:
        with reading(request) as s:
            return overview_q.ledger_health(s, dict(c.ext.retention_days))

    health = shared("ledger", LEDGER_HEALTH_TTL_S, read)  # it counts every row: once a minute
    return respond(
        request,
        "ledger.html",
        health,
        who=who,
        nav="ledger",
        health=health,
        ttl_s=LEDGER_HEALTH_TTL_S,
    )
