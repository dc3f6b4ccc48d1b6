"""The payment webhook endpoint's process: ``python -m programs.webhooks --port 8100``.

Importing ``broker`` builds and installs the process's settings, the routing table and the
broker the outbox publishes with; the endpoint itself is ``shop.payments.webhooks``.
"""

from __future__ import annotations

import argparse
import socket

import uvicorn

import actors  # noqa: F401  (declared actors name the ledger's args by parameter)
import broker
from jobcore import logs, outbox
from middleware.outbox_relay import build_relay
from shop.payments.webhooks import build_app


def main() -> None:
    ap = argparse.ArgumentParser(description="payment webhook endpoint")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8100)
    args = ap.parse_args()
    settings = broker.settings
    # the project's logging: JSON or console as configured, every configured secret masked
    logs.configure(settings.log_format, settings.log_level, settings=settings)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(
        2048
    )  # before READY: a client that connects while uvicorn starts waits, not refused
    print(f"READY webhooks http://{args.host}:{sock.getsockname()[1]}", flush=True)
    app = build_app(settings.payment_webhook_secrets)
    # log_config=None: uvicorn keeps the handlers logs.configure installed (no plain lines)
    config = uvicorn.Config(app, log_level="warning", log_config=None, access_log=False)
    # the endpoint's commits hand their sends to a relay of its own, as the workers and the
    # scheduler do: a request never waits for RabbitMQ (an alarm blocks publishers, T21)
    relay = build_relay(settings, broker.broker).start()
    outbox.relay_sends_with(relay)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        outbox.relay_sends_with(None)
        relay.stop()


if __name__ == "__main__":
    main()
