"""Ports for the processes the tools and tests start: one that stays free, and a wait for a listener."""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable

_pause = threading.Event()


def _ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
            low, high = (int(v) for v in fh.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A free port below the ephemeral range.

    A port from the ephemeral range can be taken before the process meant to listen on it
    binds: any outgoing connection of the machine may be given it as its source port (and a
    client reconnecting to a restarted service may connect to itself), so the listener fails
    with EADDRINUSE.
    """
    low, _ = _ephemeral_range()
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(max(1024, low - 12000), low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def wait_listening(
    port: int, timeout: float, alive: Callable[[], bool] = lambda: True, what: str = ""
) -> None:
    """Return once something accepts connections on 127.0.0.1:``port``.

    Raise RuntimeError when ``alive()`` turns false (the process meant to listen died) or after
    ``timeout`` seconds: a process can log that it is ready seconds before a fork of it listens.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            pass
        if not alive():
            raise RuntimeError(f"{what or 'the process'} ended before listening on port {port}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on port {port} after {timeout}s ({what})")
        _pause.wait(0.1)
