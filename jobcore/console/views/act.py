"""Cancelling jobs (one, or a previewed snapshot of a filter) and schedule actions."""

from __future__ import annotations

import datetime as dt

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from jobcore.cancellations import CANCELLABLE
from jobcore.console import actions, filters
from jobcore.console.auth import Principal
from jobcore.console.queries import jobs as jobs_q
from jobcore.console.views.common import params, reading, respond
from jobcore.console.web import action, console_of, page
from jobcore.errors import InvalidInput, NotFound


def _reason(form: FormData) -> str:
    reason = str(form.get("reason") or "").strip()
    if not reason:
        raise InvalidInput("a cancellation needs a reason")
    if len(reason) > 500:
        raise InvalidInput("a reason has at most 500 characters")
    return reason


@action("operator")
def cancel_one(request: Request, who: Principal, form: FormData) -> Response:
    message_id = request.path_params["message_id"][:64]
    results = actions.cancel(who, [message_id], _reason(form), cap=1)
    return console_of(request).render(
        request, "done.html", who=who, nav="jobs", title="Cancel", results=results
    )


@page("operator")
def cancel_preview(request: Request, who: Principal) -> Response:
    p = params(request, filters.JOB_FILTERS)
    f = filters.job_filter(p, dt.datetime.now(dt.UTC))
    if f.empty:
        raise InvalidInput("choose a filter first: a bulk cancel acts on the jobs a filter shows")
    cap = console_of(request).console.bulk_cap
    with reading(request) as s:
        rows, more = jobs_q.snapshot(s, f, states=CANCELLABLE, cap=cap)
    return console_of(request).render(
        request,
        "bulk_cancel.html",
        who=who,
        nav="jobs",
        rows=rows,
        more=more,
        cap=cap,
        query=filters.query_string(f.raw),
    )


@action("operator")
def cancel_apply(request: Request, who: Principal, form: FormData) -> Response:
    ids = [str(i)[:64] for i in form.getlist("id")]
    if str(form.get("count") or "") != str(len(ids)):
        raise InvalidInput("the preview and the submitted selection differ; preview again")
    results = actions.cancel(who, ids, _reason(form), cap=console_of(request).console.bulk_cap)
    return console_of(request).render(
        request, "done.html", who=who, nav="jobs", title="Bulk cancel", results=results
    )


@page()
def schedules(request: Request, who: Principal) -> Response:
    params(request, ())
    ext = console_of(request).ext
    rows, current = ([], None) if ext.schedules is None else ext.schedules.listing()
    return respond(
        request,
        "schedules.html",
        {"schedules": rows, "leader": current},
        who=who,
        nav="schedules",
        rows=rows,
        leader=current,
        available=ext.schedules is not None,
        live=True,
    )


@action("operator")
def schedule_action(request: Request, who: Principal, form: FormData) -> Response:
    name, verb = request.path_params["name"], request.path_params["verb"]
    if verb not in ("pause", "resume", "trigger") or len(name) > 120:
        raise NotFound(f"no schedule action {verb!r}")
    result = actions.schedule(who, console_of(request).ext, name, verb)
    return console_of(request).render(
        request, "done.html", who=who, nav="schedules", title=f"Schedule {verb}", results=[result]
    )
