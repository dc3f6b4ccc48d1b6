"""Misbehaviour a chaos run loads into its workers (``shopjobs worker actors devtools.chaos.actors``).

Actors: ``chaos.poison`` always raises (T7), ``chaos.crash_poison`` kills its process every
time it runs (T8), ``chaos.probe`` does nothing (a fault's resume probe); ``chaos.long_job``
runs for a given time and ``chaos.due``/``chaos.send_later`` are delayed jobs and their sender
(T15). Switches, read from the environment of the worker group:

- ``SHOPJOBS_CHAOS_DUPLICATE=1``: every message is published twice, with the same id (T12).
- ``SHOPJOBS_CHAOS_CRASH_AT=<point>``: the process SIGKILLs itself at a named point (T2), at
  most ``SHOPJOBS_CHAOS_CRASH_BUDGET`` times over the whole group (one line per kill in
  ``SHOPJOBS_CHAOS_CRASH_LOG``), every ``SHOPJOBS_CHAOS_CRASH_EVERY``-th pass. Points (``POINTS``):
  after the warehouse took the order, before the step commits; after the provider charged,
  before the payment is recorded; after the ledger committed, before the ack; after SMTP's
  250, before the e-mail is marked sent; after publishing, before the outbox row is deleted.
- ``SHOPJOBS_CHAOS_TIME_LIMIT_MS=<ms>``: every actor's time limit (and TimeLimit's default) at
  most this, so the group fits a broker whose ``consumer_timeout`` the run lowered (T15).

The points wrap the real functions from outside (the code under test carries no switch).
"""

from __future__ import annotations

import functools
import itertools
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq import Broker, Middleware

import broker as shop_broker

QUEUE = "chaos"
COPY_OPTION = "chaos_duplicate_copy"
POINTS = (
    "after_warehouse_call",
    "after_provider_charge",
    "before_ack",
    "after_smtp_250",
    "before_outbox_delete",
)


@dramatiq.actor(
    actor_name="chaos.poison", queue_name=QUEUE, max_retries=2, min_backoff=100, max_backoff=200
)
def poison(n: int) -> None:
    raise RuntimeError(f"poison message {n} fails every time")


@dramatiq.actor(actor_name="chaos.probe", queue_name=QUEUE, max_retries=3)
def probe(n: int) -> None:
    """Does nothing, on the chaos queue no backlog sits in: when a probe sent during a fault
    starts tells how long consumers took to come back, not how long the orders' backlog is."""


@dramatiq.actor(actor_name="chaos.crash_poison", queue_name=QUEUE, max_retries=3)
def crash_poison(deliveries_path: str) -> None:
    with open(deliveries_path, "a") as fh:
        fh.write(f"{os.getpid()}\n")
    os.kill(os.getpid(), signal.SIGKILL)


LONG_JOB_LIMIT_MS = 10_000


@dramatiq.actor(
    actor_name="chaos.long_job", queue_name=QUEUE, max_retries=0, time_limit=LONG_JOB_LIMIT_MS
)
def long_job(runs_path: str, seconds: float) -> None:
    """Runs ``seconds`` in short sleeps (TimeLimit's exception lands between two) and writes
    when each run started and ended: two runs at once would overlap."""
    started = time.time()
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        _append(runs_path, f"{os.getpid()} {started:.3f} {time.time():.3f}")


@dramatiq.actor(actor_name="chaos.due", queue_name=QUEUE)
def due(effects_path: str, key: int) -> None:
    """A delayed job's effect: one line per run, with the time it ran."""
    _append(effects_path, f"{key} {time.time():.3f}")


@dramatiq.actor(actor_name="chaos.send_later", queue_name=QUEUE, max_retries=3)
def send_later(effects_path: str, first_key: int, delays_ms: list[int]) -> None:
    """Sends a ``chaos.due`` per delay from inside a job (the worker's delay threshold decides
    where each waits)."""
    for n, delay in enumerate(delays_ms):
        due.send_with_options(args=(effects_path, first_key + n), delay=delay)


def _append(path: str, line: str) -> None:
    with open(path, "a") as fh:  # one short write: lines of concurrent runs do not interleave
        fh.write(line + "\n")


class DuplicateEveryPublish(Middleware):
    """Publishes each message a second time, as a relay that published twice would."""

    def after_enqueue(self, broker: Broker, message: Any, delay: int | None) -> None:
        if (
            message.options.get(COPY_OPTION)
            or message.queue_name.endswith(".DQ")
            or "eta" in message.options
        ):
            return
        broker.enqueue(message.copy(options={**message.options, COPY_OPTION: True}))


class CrashPoint:
    """Kills this process at a point, within the group's budget."""

    def __init__(self, point: str, budget: int, every: int, log: str) -> None:
        self.point, self.budget, self.every, self.log = point, budget, every, log
        self.passes = itertools.count(1)

    def maybe_die(self, republished: int = 0) -> None:
        """``republished``: messages RabbitMQ already has that another relay will publish again
        (their rows stay), written with the kill so the audit can allow for their second runs."""
        if next(self.passes) % self.every:
            return
        with open(self.log, "a+") as fh:
            fh.seek(0)
            if len(fh.read().splitlines()) >= self.budget:
                return
            fh.write(f"{self.point} {os.getpid()} {republished}\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.kill(os.getpid(), signal.SIGKILL)

    def after(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            result = fn(*args, **kwargs)
            self.maybe_die()
            return result

        return wrapped

    def before(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            self.maybe_die()
            return fn(*args, **kwargs)

        return wrapped


def _install_crash_point(crash: CrashPoint) -> None:
    if crash.point == "after_warehouse_call":
        from shop.integrations.http_clients import WarehouseClient

        WarehouseClient.send_fulfilment = crash.after(WarehouseClient.send_fulfilment)  # type: ignore[method-assign]
    elif crash.point == "after_provider_charge":
        from shop.integrations.http_clients import PaymentClient

        PaymentClient.charge = crash.after(PaymentClient.charge)  # type: ignore[method-assign]
    elif crash.point == "before_ack":
        # the ledger writer committed the final states; the consumer's connection thread is
        # about to send their (multiple) basic_ack
        from jobcore.acks import LedgerAckedConsumer

        LedgerAckedConsumer._basic_acks = crash.before(LedgerAckedConsumer._basic_acks)  # type: ignore[method-assign]
    elif crash.point == "after_smtp_250":
        import smtplib

        smtplib.SMTP.send_message = crash.after(smtplib.SMTP.send_message)  # type: ignore[method-assign]
    elif crash.point == "before_outbox_delete":
        # RabbitMQ confirmed the relay's batch; its rows are deleted next (the workers publish
        # every send through their relay)
        from jobcore import relay

        forget = relay._forget

        def forget_after_confirm(cur: Any, published: list[Any]) -> None:
            if published:
                crash.maybe_die(republished=len(published))
            forget(cur, published)

        relay._forget = forget_after_confirm
    else:
        raise ValueError(f"unknown crash point {crash.point!r}; expected one of {POINTS}")


def _cap_time_limits(cap_ms: int) -> None:
    from dramatiq.middleware import TimeLimit

    broker = shop_broker.broker
    for middleware in broker.middleware:
        if isinstance(middleware, TimeLimit):
            middleware.time_limit = min(middleware.time_limit, cap_ms)
    for name in broker.get_declared_actors():
        options = broker.get_actor(name).options
        options["time_limit"] = min(options.get("time_limit", cap_ms), cap_ms)


def _configure() -> None:
    cap = os.environ.get("SHOPJOBS_CHAOS_TIME_LIMIT_MS")
    if cap:
        _cap_time_limits(int(cap))
    if os.environ.get("SHOPJOBS_CHAOS_DUPLICATE") == "1":
        shop_broker.broker.add_middleware(DuplicateEveryPublish())
    point = os.environ.get("SHOPJOBS_CHAOS_CRASH_AT")
    if point:
        _install_crash_point(
            CrashPoint(
                point,
                int(os.environ.get("SHOPJOBS_CHAOS_CRASH_BUDGET", "3")),
                int(os.environ.get("SHOPJOBS_CHAOS_CRASH_EVERY", "10")),
                os.environ["SHOPJOBS_CHAOS_CRASH_LOG"],
            )
        )


_configure()
