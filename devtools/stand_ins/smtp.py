"""Local SMTP server (aiosmtpd) that keeps every message it accepts, with injectable faults.

It is a real SMTP server on 127.0.0.1, run as its own process, so the shop's ``smtplib`` code
is exercised over a socket exactly as in production. Beside it, an HTTP admin port (the same
``/_admin/...`` endpoints as the HTTP stand-ins) lets a test read what was delivered and change
faults while the server runs:

- ``refuse``: the SMTP port stops listening (connection refused) until the fault is cleared;
- ``smtp_421`` (at MAIL), ``smtp_451`` (at DATA): transient replies;
- ``smtp_550`` (at RCPT): a permanent refusal;
- ``hang`` (at DATA, for ``delay_s``, default 30 s): the client's timeout must fire;
- ``drop_after_data``: the message is stored, then the connection drops before the 250 reply,
  which is how the same message can legitimately arrive twice (same Message-ID).

``rate`` and ``times`` work as for the HTTP stand-ins. The log has one line per message with
its Message-ID and size, never an address.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import ssl
import sys
import threading
import time
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import Any, cast

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from devtools.stand_ins.faults import FaultConfigError, FaultController
from devtools.stand_ins.http_base import App, HttpError, Reply, Request, Server
from devtools.stand_ins.process import StandIn, launch

log = logging.getLogger("devtools.stand_ins.smtp")
MODES = frozenset({"none", "refuse", "smtp_421", "smtp_451", "smtp_550", "hang", "drop_after_data"})
STAGE_MODES = {
    "MAIL": {"smtp_421"},
    "RCPT": {"smtp_550"},
    "DATA": {"smtp_451", "hang", "drop_after_data"},
}
REPLIES = {
    "smtp_421": "421 4.3.2 Service not available, closing transmission channel",
    "smtp_451": "451 4.3.0 Requested action aborted: local error in processing",
    "smtp_550": "550 5.1.1 Requested action not taken: mailbox unavailable",
}


class SmtpApp(App):
    """The admin side: faults, the message store and where the SMTP port listens."""

    name = "smtp"

    def __init__(self) -> None:
        super().__init__()
        self.faults = FaultController(MODES)
        self.messages: list[dict[str, Any]] = []
        self.sessions = 0
        self.listener: Listener | None = None
        self.route("GET", "/_admin/messages", self._messages)
        self.route("GET", "/_admin/smtp", self._smtp_info)

    def reset_state(self) -> None:
        self.messages.clear()
        self.sessions = 0
        self._apply_listening()

    def _set_faults(self, request: Request, match: re.Match[str]) -> Reply:
        try:
            snapshot = self.faults.configure(request.json())
        except FaultConfigError as exc:
            raise HttpError(400, "invalid_faults", str(exc)) from None
        self._apply_listening()
        return Reply(200, snapshot)

    def _apply_listening(self) -> None:
        if self.listener is not None:
            self.listener.set_listening(self.faults.snapshot()["mode"] != "refuse")

    def _messages(self, request: Request, match: re.Match[str]) -> Reply:
        with_raw = request.query.get("raw", "1") != "0"
        with self.lock:
            rows = [
                m if with_raw else {k: v for k, v in m.items() if k != "raw"} for m in self.messages
            ]
        return Reply(200, {"messages": rows, "count": len(rows)})

    def _smtp_info(self, request: Request, match: re.Match[str]) -> Reply:
        assert self.listener is not None
        return Reply(
            200,
            {
                "host": self.listener.host,
                "port": self.listener.port,
                "listening": self.listener.listening,
                "sessions": self.sessions,
            },
        )

    def store(self, envelope: Envelope) -> dict[str, Any]:
        content = envelope.original_content or envelope.content or b""
        raw = content.encode() if isinstance(content, str) else bytes(content)
        headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
        with self.lock:
            row = {
                "seq": len(self.messages) + 1,
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "message_id": str(headers.get("Message-ID", "")),
                "subject": str(headers.get("Subject", "")),
                "received_at": time.time(),
                "raw": raw.decode("utf-8", "replace"),
            }
            self.messages.append(row)
        log.info("accepted message %s (%d bytes)", row["message_id"], len(raw))
        return row


class Handler:
    """aiosmtpd hooks: each stage asks the fault controller whether this message is hit."""

    def __init__(self, app: SmtpApp) -> None:
        self.app = app

    def _fault(self, stage: str) -> Any:
        modes = STAGE_MODES[stage]
        return self.app.faults.decide("SMTP", f"/{stage}", lambda spec: spec.mode in modes)

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        with self.app.lock:
            self.app.sessions += 1
        if self._fault("MAIL") is not None:
            return REPLIES["smtp_421"]
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self._fault("RCPT") is not None:
            return REPLIES["smtp_550"]
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        fault = self._fault("DATA")
        if fault is not None and fault.mode == "hang":
            await asyncio.sleep(fault.hold_s)
            return REPLIES["smtp_451"]
        if fault is not None and fault.mode == "smtp_451":
            return REPLIES["smtp_451"]
        row = self.app.store(envelope)
        if fault is not None and fault.mode == "drop_after_data":
            assert server.transport is not None
            cast(asyncio.Transport, server.transport).abort()
            log.info("dropped the connection after DATA of %s", row["message_id"])
        return "250 2.0.0 Message accepted for delivery"


class Listener:
    """The SMTP port, which can stop listening (``refuse``) and listen again on the same port."""

    def __init__(
        self,
        app: SmtpApp,
        loop: asyncio.AbstractEventLoop,
        host: str,
        port: int,
        smtp_kwargs: dict[str, Any],
    ) -> None:
        self.app, self.loop, self.host, self.port = app, loop, host, port
        self.smtp_kwargs = smtp_kwargs
        self.server: asyncio.Server | None = None
        self.listening = False

    async def start(self) -> None:
        handler = Handler(self.app)
        self.server = await self.loop.create_server(
            lambda: SMTP(handler, **self.smtp_kwargs), self.host, self.port, reuse_address=True
        )
        self.port = self.server.sockets[0].getsockname()[1]
        self.listening = True

    def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        self.listening = False

    def set_listening(self, listening: bool) -> None:
        """Called from the admin thread; waits until the port is really open or closed."""
        if listening == self.listening:
            return
        if listening:
            asyncio.run_coroutine_threadsafe(self.start(), self.loop).result(10)
        else:
            done = threading.Event()

            def close() -> None:
                self.stop()
                done.set()

            self.loop.call_soon_threadsafe(close)
            done.wait(10)
        log.info("smtp port %d %s", self.port, "listening" if self.listening else "closed (refuse)")


def _authenticator(user: str, password: str) -> Any:
    def check(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == user
            and data.password.decode() == password
        )
        return AuthResult(success=ok, handled=False)

    return check


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.stand_ins.smtp", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--port", type=int, default=0, help="admin HTTP port (0 picks a free one)")
    parser.add_argument("--smtp-port", type=int, default=0, help="SMTP port (0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--parent-pid", type=int, default=None)
    parser.add_argument("--auth-user", default=None, help="require AUTH with this user")
    parser.add_argument("--auth-password", default=None)
    parser.add_argument(
        "--tls-cert", default=None, help="offer STARTTLS with this certificate (PEM)"
    )
    parser.add_argument("--tls-key", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s smtp[%(process)d] %(message)s",
    )
    smtp_kwargs: dict[str, Any] = {
        "hostname": "smtp.stand-in.test",
        "enable_SMTPUTF8": True,
        "timeout": 60,
    }
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        smtp_kwargs.update(tls_context=context, require_starttls=True)
    if args.auth_user:
        smtp_kwargs.update(
            authenticator=_authenticator(args.auth_user, args.auth_password or ""),
            auth_required=True,
            auth_require_tls=bool(args.tls_cert),
        )
    asyncio.run(_serve(args, smtp_kwargs))


async def _serve(args: argparse.Namespace, smtp_kwargs: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    app = SmtpApp()
    app.listener = Listener(app, loop, args.host, args.smtp_port, smtp_kwargs)
    await app.listener.start()
    admin = Server(app, args.host, args.port)
    threading.Thread(target=admin.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    stopped = asyncio.Event()
    for signum in (2, 15):
        loop.add_signal_handler(signum, stopped.set)
    if args.parent_pid is not None:
        loop.create_task(_watch_parent(args.parent_pid, stopped))
    print(f"READY smtp {admin.url}", flush=True)
    await stopped.wait()
    app.close()
    app.listener.stop()
    threading.Thread(target=admin.shutdown, daemon=True).start()
    log.info("smtp stopped")


async def _watch_parent(parent_pid: int, stopped: asyncio.Event) -> None:
    import os

    while not stopped.is_set():
        if os.getppid() != parent_pid:
            log.warning("parent %r is gone, stopping", parent_pid)
            stopped.set()
            return
        await asyncio.sleep(0.5)


class SmtpStandIn(StandIn):
    """The running SMTP stand-in: where to send mail, and what it received."""

    def smtp_address(self) -> tuple[str, int]:
        info = self.admin("GET", "/_admin/smtp")
        return str(info["host"]), int(info["port"])

    def messages(self, raw: bool = True) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.admin("GET", f"/_admin/messages?raw={int(raw)}")[
            "messages"
        ]
        return result

    def ledger(self) -> dict[str, Any]:
        return {"messages": self.messages(raw=False)}


def start_smtp_stand_in(
    port: int = 0,
    smtp_port: int = 0,
    log_path: str | None = None,
    extra_args: list[str] | None = None,
) -> SmtpStandIn:
    """Start the SMTP stand-in process; ``smtp_address()`` tells where it listens."""
    args = ["--smtp-port", str(smtp_port), *(extra_args or [])]
    return launch(SmtpStandIn, "smtp", port=port, extra_args=args, log_path=log_path)


if __name__ == "__main__":
    main()
