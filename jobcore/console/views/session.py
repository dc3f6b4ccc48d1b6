"""Login and logout. The login form carries its own CSRF token (a cookie and a field that must
match), since there is no session yet to hold one."""

from __future__ import annotations

import datetime as dt
import hmac

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from jobcore.console import auth
from jobcore.console.web import (
    LOGIN_CSRF_COOKIE,
    Forbidden,
    console_of,
    new_login_csrf,
    read_form,
    same_origin,
    session_token,
)
from jobcore.db import session_scope


def _safe_next(raw: str | None) -> str:
    """Only a path on this console (never //host or a scheme): no open redirect."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw or len(raw) > 1500:
        return "/"
    return raw


def login_form(request: Request, error: str | None = None, status: int = 200) -> Response:
    c = console_of(request)
    token = new_login_csrf()
    response = c.render(
        request,
        "login.html",
        status=status,
        who=None,
        error=error,
        login_csrf=token,
        next=_safe_next(request.query_params.get("next")),
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=1800,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=c.console.secure_cookies,
    )
    return response


async def login(request: Request) -> Response:
    if request.method == "GET":
        return login_form(request)
    form = await read_form(request, 10)
    name = str(form.get("name") or "")[:64]
    password = str(form.get("password") or "")[:1000]
    sent = str(form.get("csrf_token") or "")
    target = _safe_next(str(form.get("next") or ""))
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(sent.encode(), cookie.encode()):
        raise Forbidden("the login form's CSRF token is missing or stale; reload the page")
    same_origin(request)
    c = console_of(request)
    if c.throttle.blocked(name):
        return login_form(request, "too many failed attempts for this name; wait 15 minutes", 429)
    token = await run_in_threadpool(_authenticate, request, name, password)
    if token is None:
        c.throttle.failed(name)
        return login_form(request, "wrong name or password", 401)
    c.throttle.succeeded(name)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        c.cookie_name,
        token,
        max_age=c.console.session_max_hours * 3600,
        path="/",
        httponly=True,
        samesite="strict",
        secure=c.console.secure_cookies,
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


def _authenticate(request: Request, name: str, password: str) -> str | None:
    c = console_of(request)
    with session_scope() as s:
        user = auth.authenticate(s, name, password)
        if user is None:
            return None
        return auth.open_session(s, user, hours=c.console.session_max_hours)


async def logout(request: Request) -> Response:
    form = await read_form(request, 10)
    sent = str(form.get("csrf_token") or "")
    token = session_token(request)
    c = console_of(request)

    def close() -> None:
        with session_scope() as s:
            who = auth.resolve(s, token or "", kind="browser", idle=dt.timedelta(days=365))
            if who is None or not hmac.compare_digest(sent.encode(), who.csrf_token.encode()):
                raise Forbidden("the form's CSRF token is missing or stale; reload the page")
            auth.close_session(s, token or "")

    await run_in_threadpool(close)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(
        c.cookie_name, path="/", secure=c.console.secure_cookies, httponly=True, samesite="strict"
    )
    return response
