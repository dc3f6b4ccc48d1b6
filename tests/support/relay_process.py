"""A relay on its own, as a process a test can SIGKILL: ``python -m tests.support.relay_process``."""

from __future__ import annotations

import threading

import broker
from middleware.outbox_relay import build_relay

if __name__ == "__main__":
    relay = build_relay(broker.settings, broker.broker)
    relay.poll_s = 0.02
    relay.batch = 100
    relay.start()
    print("relay ready", flush=True)
    threading.Event().wait()
