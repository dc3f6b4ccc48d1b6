"""Actors for the limit tests: the shop's limited calls, run by real workers."""

from __future__ import annotations

import os
import threading

import dramatiq

import broker  # noqa: F401  (the project's broker and middleware stack)
from jobcore.limits import ConcurrencyLimit
from shop.integrations import providers
from shop.notifications import sms
from shop.settings import current

QUEUE = "tests"


@dramatiq.actor(
    actor_name="tests.charge_limited",
    queue_name=QUEUE,
    max_retries=50,
    min_backoff=200,
    max_backoff=1000,
)
def charge_limited(n: int) -> str:
    """One charge through the shop's payment client (which holds a slot of its global limit)."""
    return providers.payments().charge(n, 100, "EUR", "tok_visa", f"limit-test-{n}")["id"]


@dramatiq.actor(
    actor_name="tests.sms_limited",
    queue_name=QUEUE,
    max_retries=50,
    min_backoff=200,
    max_backoff=1000,
)
def sms_limited(n: int) -> str:
    """One SMS through the shop's SMS client (which takes a token of the global SMS rate)."""
    return sms.send(current(), "+4915112345678", f"limit test {n}", f"limit-test-{n}")


@dramatiq.actor(actor_name="tests.hold_slot_and_hang", queue_name=QUEUE, max_retries=0)
def hold_slot_and_hang(key: str, lease_ms: int, marker: str) -> None:
    """Takes the only slot of ``key`` and hangs (until the test kills its worker); a redelivery
    after the kill finds the marker and returns without the slot."""
    if os.path.exists(marker):
        return
    with ConcurrencyLimit(key, 1, lease_ms=lease_ms, wait_ms=0).hold():
        with open(marker, "w") as fh:
            fh.write(str(os.getpid()))
        threading.Event().wait(120)
