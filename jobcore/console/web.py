"""The console's web plumbing: who is asking, CSRF, security headers, error pages, templates.

Every page is a plain function ``(request, who) -> Response`` wrapped by ``page`` (read, with a
minimum role) or ``action`` (POST: session, CSRF token, same-origin, role, in that order), so no
form can be added that skips the checks.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hmac
import json
import logging
import os
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, quote

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobcore.console import auth
from jobcore.console.extensions import Extensions
from jobcore.console.filters import MAX_QUERY_STRING
from jobcore.console.settings import ConsoleSettings
from jobcore.db import session_scope
from jobcore.errors import InvalidInput
from jobcore.redaction import scrub_text
from jobcore.settings import JobSettings

logger = logging.getLogger("shopjobs.console")
HERE = os.path.dirname(os.path.abspath(__file__))
COOKIE = "__Host-shopjobs-console"
COOKIE_PLAIN = "shopjobs-console"  # without HTTPS the __Host- prefix is refused by browsers
LOGIN_CSRF_COOKIE = "shopjobs-console-login"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)


class LoginRequired(Exception):
    """No live session: pages redirect to the login form, JSON answers 401."""


class Forbidden(Exception):
    """A live session whose role may not do this (or a request that failed its CSRF check)."""


@dataclasses.dataclass
class Console:
    """Everything a request needs, made once by ``create_app``."""

    settings: JobSettings
    console: ConsoleSettings
    ext: Extensions
    templates: jinja2.Environment
    throttle: auth.LoginThrottle

    @property
    def cookie_name(self) -> str:
        return COOKIE if self.console.secure_cookies else COOKIE_PLAIN

    def render(
        self, request: Request, name: str, status: int = 200, **context: Any
    ) -> HTMLResponse:
        template = self.templates.get_template(name)
        html = template.render(request=request, ext=self.ext, console=self, **context)
        return HTMLResponse(html, status_code=status)


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(os.path.join(HERE, "templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["mask"] = lambda v: "" if v is None else scrub_text(str(v))
    env.filters["ago"] = ago
    env.filters["when"] = when
    env.filters["seconds"] = seconds
    env.filters["count"] = lambda n: "-" if n is None else f"{n:,}"
    env.filters["bytes"] = size
    env.filters["pretty"] = lambda v: scrub_text(
        json.dumps(v, indent=2, default=str, ensure_ascii=False)
    )
    env.filters["urlq"] = lambda v: quote(str(v), safe="")
    return env


def ago(value: dt.datetime | None) -> str:
    if value is None:
        return "-"
    return seconds((dt.datetime.now(dt.UTC) - value).total_seconds()) + " ago"


def when(value: dt.datetime | None) -> str:
    return (
        "-"
        if value is None
        else value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"
    )


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) < 1:
        return f"{value * 1000:.0f} ms"
    if abs(value) < 120:
        return f"{value:.1f} s"
    if abs(value) < 7200:
        return f"{value / 60:.0f} min"
    if abs(value) < 172800:
        return f"{value / 3600:.1f} h"
    return f"{value / 86400:.1f} d"


def size(value: int | None) -> str:
    if value is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}"
        value = value / 1024  # type: ignore[assignment]
    return f"{value:.1f} TiB"


def session_token(request: Request) -> str | None:
    return request.cookies.get(console_of(request).cookie_name)


def identify(request: Request, role: str) -> auth.Principal:
    """The principal of this request with at least ``role``: a browser session, or (GET only)
    an API token sent as ``Authorization: Bearer``."""
    c = console_of(request)
    token, kind = session_token(request), "browser"
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer ") and request.method == "GET":
        token, kind = header[7:].strip(), "token"
    if not token:
        raise LoginRequired()
    idle = dt.timedelta(minutes=c.console.session_idle_minutes) if kind == "browser" else None
    with session_scope() as s:
        who = auth.resolve(s, token, kind=kind, idle=idle)
    if who is None:
        raise LoginRequired()
    if not who.may(role):
        raise Forbidden(f"this needs the {role} role; {who.name} is a {who.role}")
    return who


def page(
    role: str = "viewer",
) -> Callable[[Callable[..., Response]], Callable[[Request], Response]]:
    """A read page for ``role`` and above (run in the thread pool: the database calls block)."""

    def wrap(fn: Callable[..., Response]) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            return fn(request, identify(request, role))

        endpoint.__name__ = fn.__name__
        endpoint.console_role = role  # type: ignore[attr-defined]
        return endpoint

    return wrap


def action(
    role: str = "operator", max_fields: int = 11_000
) -> Callable[[Callable[..., Response]], Any]:
    """A POST for ``role`` and above: the session's CSRF token must come with the form."""

    def wrap(fn: Callable[..., Response]) -> Any:
        async def endpoint(request: Request) -> Response:
            form = await read_form(request, max_fields)
            return await run_in_threadpool(_act, request, form)

        def _act(request: Request, form: FormData) -> Response:
            who = identify(request, "viewer")
            check_csrf(request, who, form)
            if not who.may(role):
                raise Forbidden(f"this needs the {role} role; {who.name} is a {who.role}")
            return fn(request, who, form)

        endpoint.__name__ = fn.__name__
        endpoint.console_role = role  # type: ignore[attr-defined]
        endpoint.console_action = True  # type: ignore[attr-defined]
        return endpoint

    return wrap


MAX_FORM_BYTES = 1_000_000


async def read_form(request: Request, max_fields: int = 100) -> FormData:
    """An url-encoded form (the only kind the console's pages send), bounded in size and fields."""
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind not in ("application/x-www-form-urlencoded", ""):
        raise InvalidInput("forms must be application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise InvalidInput("the form is too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=max_fields)
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput(f"the form is malformed or has more than {max_fields} fields") from None
    fields: list[tuple[str, str | UploadFile]] = list(pairs)
    return FormData(fields)


def check_csrf(request: Request, who: auth.Principal, form: FormData) -> None:
    sent = form.get("csrf_token") or request.headers.get("x-csrf-token") or ""
    if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), who.csrf_token.encode()):
        raise Forbidden("the form's CSRF token is missing or stale; reload the page and try again")
    same_origin(request)


def same_origin(request: Request) -> None:
    """Browsers say where a request comes from; a cross-site POST is refused outright."""
    site = request.headers.get("sec-fetch-site")
    if site not in (None, "same-origin", "none"):
        raise Forbidden("cross-site requests are refused")
    origin = request.headers.get("origin")
    if origin and origin != "null":
        expected = f"{request.url.scheme}://{request.headers.get('host', '')}"
        if origin != expected:
            raise Forbidden("cross-origin requests are refused")


def wants_json(request: Request) -> bool:
    return request.url.path.endswith(".json") or "application/json" in request.headers.get(
        "accept", ""
    )


def error_page(request: Request, status: int, title: str, detail: str) -> Response:
    if wants_json(request):
        return JSONResponse({"error": title, "detail": detail}, status_code=status)
    c = console_of(request)
    return c.render(request, "error.html", status=status, title=title, detail=detail, who=None)


def login_redirect(request: Request) -> Response:
    if wants_json(request):
        return JSONResponse({"error": "login required"}, status_code=401)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = "/login?next=" + quote(target, safe="")
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


class SecurityHeaders:
    """CSP and friends on every response; over-long URLs refused before any routing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if (
            len(scope.get("query_string", b"")) > MAX_QUERY_STRING
            or len(scope.get("path", "")) > 500
        ):
            await _plain(send, 414, b"URI too long: narrow the filter")
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                    (b"cross-origin-resource-policy", b"same-origin"),
                    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
                ]
                if not scope["path"].startswith("/static/"):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _plain(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": body})
