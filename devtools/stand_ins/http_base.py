"""The stand-ins' shared HTTP server: routing, JSON, fault injection, admin endpoints and the CLI.

Stdlib ``ThreadingHTTPServer`` on purpose: the stand-ins need no dependency beyond the shop's
own, and a held ("timeout") request must not block the others, so each connection gets a thread.
Every endpoint under ``/_admin/`` is exempt from faults so a test can always repair the stand-in.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from devtools.stand_ins.faults import BASE_MODES, FaultConfigError, FaultController, FaultSpec

log = logging.getLogger("devtools.stand_ins")
ADMIN_PREFIX = "/_admin/"
MAX_BODY_BYTES = 1_000_000


@dataclass
class Reply:
    """A JSON answer: status, body (anything ``json.dumps`` takes) and extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class HttpError(Exception):
    """Raised by a route to answer ``{"error": code, "detail": ...}`` with ``status``."""

    def __init__(self, status: int, code: str, detail: str | None = None, **extra: Any) -> None:
        super().__init__(f"{status} {code}")
        self.status = status
        self.body: dict[str, Any] = {"error": code, **extra}
        if detail:
            self.body["detail"] = detail

    def reply(self) -> Reply:
        return Reply(self.status, self.body)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Message[str, str]
    body: bytes
    fault: FaultSpec | None = None

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, ValueError):
            raise HttpError(400, "invalid_json", "the request body is not JSON") from None

    def json_object(self) -> dict[str, Any]:
        data = self.json()
        if not isinstance(data, dict):
            raise HttpError(400, "invalid_json", "the request body must be a JSON object")
        return data


Handler = Callable[[Request, "re.Match[str]"], Reply]


class App:
    """A stand-in's behaviour: routes and in-memory state behind one lock, plus faults.

    Subclasses set ``name`` and ``extra_fault_modes``, make their state and register routes in
    ``__init__``, and clear that state in ``reset_state`` (called under the lock).
    """

    name = "stand-in"
    extra_fault_modes: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self.faults = FaultController(BASE_MODES | self.extra_fault_modes)
        self.started = time.time()
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.route("GET", "/_admin/health", self._health)
        self.route("GET", "/_admin/faults", lambda r, m: Reply(200, self.faults.snapshot()))
        self.route("POST", "/_admin/faults", self._set_faults)
        self.route("POST", "/_admin/reset", self._reset)
        # calls in flight at once and when each arrived: what a global limit must bound
        self._load_lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0
        self.arrivals: list[float] = []
        self.route("GET", "/_admin/concurrency", self._concurrency)

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method, re.compile(pattern), handler))

    def reset_state(self) -> None:
        """Forget everything the stand-in has recorded."""

    def fault_applies(self, spec: FaultSpec, request: Request) -> bool:
        """Whether ``spec`` can hit this request at all (e.g. a decline only hits new charges)."""
        return True

    def close(self) -> None:
        """Wake every held request so shutdown is prompt."""
        self.stopping.set()

    def _health(self, request: Request, match: re.Match[str]) -> Reply:
        return Reply(
            200,
            {
                "status": "ok",
                "name": self.name,
                "pid": os.getpid(),
                "uptime_s": round(time.time() - self.started, 3),
            },
        )

    def _set_faults(self, request: Request, match: re.Match[str]) -> Reply:
        try:
            return Reply(200, self.faults.configure(request.json()))
        except FaultConfigError as exc:
            raise HttpError(400, "invalid_faults", str(exc)) from None

    def _reset(self, request: Request, match: re.Match[str]) -> Reply:
        self.faults.clear()
        with self.lock:
            self.reset_state()
        with self._load_lock:
            self.peak = self.in_flight
            self.arrivals = []
        return Reply(200, {"status": "reset"})

    def _concurrency(self, request: Request, match: re.Match[str]) -> Reply:
        with self._load_lock:
            arrivals = list(self.arrivals)
            return Reply(
                200, {"in_flight": self.in_flight, "peak": self.peak, "arrivals": arrivals}
            )

    def handle(self, request: Request) -> Reply | None:
        """Answer ``request``, or return ``None`` to drop the connection without an answer."""
        if request.path.startswith(ADMIN_PREFIX):
            return self._handle(request)
        with self._load_lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            if len(self.arrivals) < 100_000:
                self.arrivals.append(time.time())
        try:
            return self._handle(request)
        finally:
            with self._load_lock:
                self.in_flight -= 1

    def _handle(self, request: Request) -> Reply | None:
        if not request.path.startswith(ADMIN_PREFIX):
            request.fault = self.faults.decide(
                request.method, request.path, lambda spec: self.fault_applies(spec, request)
            )
        fault = request.fault
        if fault is not None:
            if fault.mode == "timeout":
                self.stopping.wait(fault.hold_s)
                return None
            if fault.mode == "slow":
                self.stopping.wait(fault.slow_s)
            elif fault.mode in ("http_500", "http_503"):
                return Reply(
                    int(fault.mode[-3:]), {"error": "injected_fault", "detail": fault.mode}
                )
            elif fault.mode == "rate_limit":
                return Reply(
                    429, {"error": "rate_limited"}, {"Retry-After": str(fault.retry_after_s)}
                )
        reply = self._dispatch(request)
        if fault is not None and fault.mode.startswith("timeout_after"):
            # the effect is recorded; only the answer is lost, as when a network drops it
            self.stopping.wait(fault.hold_s)
            return None
        return reply

    def _dispatch(self, request: Request) -> Reply:
        allowed = False
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            if method != request.method:
                allowed = True
                continue
            try:
                return handler(request, match)
            except HttpError as exc:
                return exc.reply()
            except Exception:
                log.exception("%s: %s %s failed", self.name, request.method, request.path)
                return Reply(500, {"error": "internal_error"})
        if allowed:
            return Reply(405, {"error": "method_not_allowed"})
        return Reply(404, {"error": "not_found"})


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # an idle keep-alive connection does not pin a thread forever
    server: Server

    def _serve(self) -> None:
        started = time.monotonic()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self._write(Reply(400, {"error": "invalid_content_length"}))
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        request = Request(self.command, url.path, dict(parse_qsl(url.query)), self.headers, body)
        reply = self.server.app.handle(request)
        fault = request.fault.mode if request.fault else "-"
        elapsed_ms = (time.monotonic() - started) * 1000
        if reply is None:
            self.close_connection = True
            log.info(
                "%s %s dropped fault=%s %.0fms", request.method, request.path, fault, elapsed_ms
            )
            return
        log.info(
            "%s %s %d fault=%s %.0fms",
            request.method,
            request.path,
            reply.status,
            fault,
            elapsed_ms,
        )
        self._write(reply)

    def _write(self, reply: Reply) -> None:
        raw = isinstance(reply.body, bytes)  # a file (an image), sent as is with its own type
        payload = (
            reply.body
            if raw
            else b""
            if reply.body is None
            else json.dumps(reply.body).encode("utf-8")
        )
        headers = dict(reply.headers)
        content_type = headers.pop(
            "Content-Type", "application/octet-stream" if raw else "application/json"
        )
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client gave up (timed out) before the answer
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: ``_serve`` logs one line per request, without bodies (no PII)."""


class Server(ThreadingHTTPServer):
    """One stand-in listening on 127.0.0.1; ``port=0`` picks a free port."""

    daemon_threads = True

    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), _RequestHandler)
        self.app = app

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        if isinstance(host, bytes):
            host = host.decode("ascii")
        return f"http://{host}:{port}"

    def stop(self) -> None:
        """Stop serving from any thread except the one running ``serve_forever``."""
        self.app.close()
        self.shutdown()
        self.server_close()


def start_in_thread(app: App, port: int = 0, host: str = "127.0.0.1") -> Server:
    """Serve ``app`` on a background thread of this process (for quick local experiments)."""
    server = Server(app, host, port)
    threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.1},
        name=f"stand-in-{app.name}",
        daemon=True,
    ).start()
    return server


def serve(app: App, port: int = 0, host: str = "127.0.0.1", parent_pid: int | None = None) -> None:
    """Serve until SIGTERM/SIGINT (or until ``parent_pid`` dies); print the READY line first."""
    server = Server(app, host, port)

    def stop(*_: Any) -> None:
        app.close()
        # shutdown() waits for serve_forever, which runs on this (the signal's) thread
        threading.Thread(target=server.shutdown, daemon=True).start()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    if parent_pid is not None:
        threading.Thread(target=_watch_parent, args=(parent_pid, app, stop), daemon=True).start()
    print(f"READY {app.name} {server.url}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        app.close()
        server.server_close()
        log.info("%s stopped", app.name)


def _watch_parent(parent_pid: int, app: App, stop: Callable[[], None]) -> None:
    """Exit with the process that started us, so a crashed test run leaves no stray server."""
    while not app.stopping.wait(0.5):
        if os.getppid() != parent_pid:
            log.warning("%s: parent %r is gone, stopping", app.name, parent_pid)
            stop()
            return


def main(app_factory: Callable[[], App], argv: list[str] | None = None) -> None:
    """``python -m devtools.stand_ins.<name> --port N``: the command-line entry of every stand-in."""
    app = app_factory()
    parser = argparse.ArgumentParser(
        prog=f"python -m devtools.stand_ins.{app.name}",
        description=f"Local {app.name} stand-in with fault injection.",
    )
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "--parent-pid",
        type=int,
        default=None,
        help="stop when this process is no longer our parent",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format=f"%(asctime)s %(levelname)s {app.name}[%(process)d] %(message)s",
    )
    serve(app, args.port, args.host, args.parent_pid)
