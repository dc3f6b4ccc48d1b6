"""Dead letters: browse, show the body, replay or purge one, or many after a preview."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from jobcore import dead_letters
from jobcore.console import actions, filters
from jobcore.console.auth import Principal
from jobcore.console.queries import dead_letters as letters_q
from jobcore.console.views.common import params, reading, respond
from jobcore.console.web import action, console_of, page
from jobcore.errors import InvalidInput, NotFound
from jobcore.models import REASONS
from jobcore.redaction import scrub_text

BULK = {"replay": "operator", "purge": "admin"}


@page()
def listing(request: Request, who: Principal) -> Response:
    p = params(request, (*letters_q.FILTERS, "before", "limit"))
    f = letters_q.letter_filter(p)
    before = p.integer("before")
    limit = filters.limit_of(p)
    with reading(request) as s:
        rows, next_before = letters_q.page(s, f, before=before, limit=limit)
        total = letters_q.count(s, f)
    if before and not rows:
        raise NotFound("no dead letters after this point: the page is past the end")
    next_link = (
        ("/dead-letters?" + filters.query_string(f.raw, before=next_before))
        if next_before
        else None
    )
    data = {
        "total": total,
        "dead_letters": [dead_letters.as_dict(r) for r in rows],
        "next": next_link,
    }
    return respond(
        request,
        "dead_letters.html",
        data,
        who=who,
        nav="dead",
        f=f,
        rows=rows,
        total=total,
        next_link=next_link,
        reasons=REASONS,
        query=filters.query_string(f.raw),
        live=before is None,
    )


def _letter_id(request: Request) -> int:
    raw = request.path_params["letter_id"]
    if not raw.isdigit() or int(raw) > filters.MAX_ID:
        raise InvalidInput(f"{raw[:40]!r} is not a dead letter id")
    return int(raw)


@page()
def one(request: Request, who: Principal) -> Response:
    letter_id = _letter_id(request)
    with reading(request) as s:
        row = dead_letters.get(s, letter_id)
    body, cut = letters_q.body_view(row.body)
    data = {
        **dead_letters.as_dict(row, full=True),
        "body": scrub_text(body),
        "body_cut": cut,
        "body_bytes": len(row.body),
    }
    return respond(
        request,
        "dead_letter.html",
        data,
        who=who,
        nav="dead",
        row=row,
        body=scrub_text(body),
        cut=cut,
    )


@action("operator")
def replay_one(request: Request, who: Principal, form: FormData) -> Response:
    results = actions.replay(who, console_of(request).ext, [_letter_id(request)], cap=1)
    return _done(request, who, "Replay", results)


@action("admin")
def purge_one(request: Request, who: Principal, form: FormData) -> Response:
    results = actions.purge(who, [_letter_id(request)], cap=1)
    return _done(request, who, "Purge", results)


@page("operator")
def bulk_preview(request: Request, who: Principal) -> Response:
    """What a bulk action would touch: the ids shown here are the only ones it will."""
    p = params(request, (*letters_q.FILTERS, "action"))
    verb = p.choice("action", tuple(BULK)) or "replay"
    if not who.may(BULK[verb]):
        from jobcore.console.web import Forbidden

        raise Forbidden(f"{verb} needs the {BULK[verb]} role; {who.name} is a {who.role}")
    f = letters_q.letter_filter(p)
    cap = console_of(request).console.bulk_cap
    with reading(request) as s:
        rows, matching = letters_q.snapshot(s, f, cap)
    return console_of(request).render(
        request,
        "bulk_letters.html",
        who=who,
        nav="dead",
        verb=verb,
        rows=rows,
        matching=matching,
        cap=cap,
        f=f,
        query=filters.query_string(f.raw),
    )


@action("operator")
def bulk_apply(request: Request, who: Principal, form: FormData) -> Response:
    verb = str(form.get("action") or "")
    if verb not in BULK:
        raise InvalidInput("action must be replay or purge")
    if not who.may(BULK[verb]):
        from jobcore.console.web import Forbidden

        raise Forbidden(f"{verb} needs the {BULK[verb]} role; {who.name} is a {who.role}")
    raw_ids = form.getlist("id")
    if not all(isinstance(i, str) and i.isdigit() and int(i) <= filters.MAX_ID for i in raw_ids):
        raise InvalidInput("ids must be dead letter numbers")
    ids = [int(i) for i in raw_ids]  # type: ignore[arg-type]
    expected = str(form.get("count") or "")
    if expected != str(len(ids)):
        raise InvalidInput(
            f"the preview showed {expected or '?'} rows but {len(ids)} came back; preview again"
        )
    cap = console_of(request).console.bulk_cap
    if verb == "replay":
        results = actions.replay(who, console_of(request).ext, ids, cap)
    else:
        results = actions.purge(who, ids, cap)
    return _done(request, who, f"Bulk {verb}", results)


def _done(request: Request, who: Principal, title: str, results: list[actions.Result]) -> Response:
    data = {"title": title, "results": results}
    return respond(request, "done.html", data, who=who, nav="dead", title=title, results=results)
