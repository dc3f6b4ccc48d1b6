"""``create_app``: the console as one Starlette application, with its routes and error pages."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator

from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from jobcore import db
from jobcore.console import auth, live, web
from jobcore.console.extensions import Extensions
from jobcore.console.settings import ConsoleSettings
from jobcore.console.views import act, letters, pages, session
from jobcore.errors import InvalidInput, NotFound
from jobcore.redaction import register_secrets, secrets_of
from jobcore.settings import JobSettings

logger = logging.getLogger("shopjobs.console")


def routes() -> list[Route | Mount]:
    return [
        Route("/", pages.overview),
        Route("/overview.json", pages.overview),
        Route("/login", session.login, methods=["GET", "POST"]),
        Route("/logout", session.logout, methods=["POST"]),
        Route("/events", events),
        Route("/jobs", pages.jobs),
        Route("/jobs.json", pages.jobs),
        Route("/jobs/cancel", act.cancel_preview),
        Route("/jobs/cancel", act.cancel_apply, methods=["POST"]),
        Route("/jobs/{message_id}.json", pages.job),
        Route("/jobs/{message_id}", pages.job),
        Route("/jobs/{message_id}/cancel", act.cancel_one, methods=["POST"]),
        Route("/groups/{group_id}.json", pages.group),
        Route("/groups/{group_id}", pages.group),
        Route("/orders/{order_id}.json", pages.order),
        Route("/orders/{order_id}", pages.order),
        Route("/failures", pages.failures),
        Route("/failures.json", pages.failures),
        Route("/dead-letters", letters.listing),
        Route("/dead-letters.json", letters.listing),
        Route("/dead-letters/bulk", letters.bulk_preview),
        Route("/dead-letters/bulk", letters.bulk_apply, methods=["POST"]),
        Route("/dead-letters/{letter_id}.json", letters.one),
        Route("/dead-letters/{letter_id}", letters.one),
        Route("/dead-letters/{letter_id}/replay", letters.replay_one, methods=["POST"]),
        Route("/dead-letters/{letter_id}/purge", letters.purge_one, methods=["POST"]),
        Route("/queues", pages.queues),
        Route("/queues.json", pages.queues),
        Route("/schedules", act.schedules),
        Route("/schedules.json", act.schedules),
        Route("/schedules/{name}/{verb}", act.schedule_action, methods=["POST"]),
        Route("/workers", pages.workers),
        Route("/workers.json", pages.workers),
        Route("/audit", pages.audit),
        Route("/audit.json", pages.audit),
        Route("/ledger", pages.ledger),
        Route("/ledger.json", pages.ledger),
        Mount("/static", StaticFiles(directory=os.path.join(web.HERE, "static")), name="static"),
    ]


async def events(request: Request) -> Response:
    await run_in_threadpool(web.identify, request, "viewer")
    return await live.events(request, request.app.state.hub)


def create_app(settings: JobSettings, console: ConsoleSettings, ext: Extensions) -> Starlette:
    """The console for ``settings``' database and broker, with the application's ``ext``."""
    db.configure(settings)
    register_secrets([*secrets_of(settings), *ext.secrets])
    hub = live.Hub(console.live_poll_s)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await hub.stop()

    app = Starlette(
        routes=routes(),
        lifespan=lifespan,
        middleware=[Middleware(web.SecurityHeaders)],
        exception_handlers={
            InvalidInput: _bad_request,
            NotFound: _not_found,
            web.LoginRequired: _login,
            web.Forbidden: _forbidden,
            HTTPException: _http,
            OperationalError: _database,
            DBAPIError: _database,
            Exception: _crash,
        },
    )
    app.state.console = web.Console(settings, console, ext, web.templates(), auth.LoginThrottle())
    app.state.hub = hub
    return app


async def _bad_request(request: Request, exc: Exception) -> Response:
    return web.error_page(request, 400, "Bad request", str(exc))


async def _not_found(request: Request, exc: Exception) -> Response:
    return web.error_page(request, 404, "Not found", str(exc))


async def _login(request: Request, exc: Exception) -> Response:
    return web.login_redirect(request)


async def _forbidden(request: Request, exc: Exception) -> Response:
    return web.error_page(request, 403, "Not allowed", str(exc))


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return web.error_page(request, 404, "Not found", f"no page at {request.url.path[:200]}")
    if exc.status_code == 405:
        return web.error_page(
            request, 405, "Method not allowed", "this page does not take that method"
        )
    return web.error_page(request, exc.status_code, "Request refused", str(exc.detail))


async def _database(request: Request, exc: Exception) -> Response:
    text = str(getattr(exc, "orig", exc))
    if "statement timeout" in text:
        return web.error_page(
            request,
            503,
            "Too slow",
            "the query took longer than the console allows; "
            "narrow the filter (an actor, a state or a time window)",
        )
    logger.warning(
        "console: database error on %s: %s", request.url.path, text.splitlines()[0][:200]
    )
    return web.error_page(
        request, 503, "Database unavailable", "the database could not answer; try again"
    )


async def _crash(request: Request, exc: Exception) -> Response:
    logger.exception("console: unexpected error on %s", request.url.path)
    return web.error_page(request, 500, "Something broke", "the error is in the console's log")
