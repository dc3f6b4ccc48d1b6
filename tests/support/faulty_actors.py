"""Actors that misbehave on purpose, on the real stack, for worker integration tests."""

from __future__ import annotations

import os
import threading

import dramatiq

import broker  # noqa: F401  (the project's broker and middleware stack)

QUEUE = "tests"


@dramatiq.actor(
    actor_name="tests.always_fails",
    queue_name=QUEUE,
    max_retries=2,
    min_backoff=400,
    max_backoff=800,
)
def always_fails(order_id: int) -> None:
    raise RuntimeError(f"boom for order {order_id}")


@dramatiq.actor(actor_name="tests.hang_first_time", queue_name=QUEUE, max_retries=0)
def hang_first_time(marker_path: str) -> None:
    """The first delivery hangs (until the test kills the worker); a redelivery finishes."""
    if os.path.exists(marker_path):
        return
    with open(marker_path, "w") as fh:
        fh.write(str(os.getpid()))
    threading.Event().wait(120)


@dramatiq.actor(
    actor_name="tests.hang_then_fail_once",
    queue_name=QUEUE,
    dedupe=True,
    max_retries=2,
    min_backoff=100,
    max_backoff=200,
)
def hang_then_fail_once(runs_path: str) -> None:
    """A deduped job (as money and stock are): the first delivery hangs (until the test kills
    the worker), the redelivery fails, the retry succeeds; each run appends a line to
    ``runs_path``."""
    runs = []
    if os.path.exists(runs_path):
        with open(runs_path) as fh:
            runs = fh.read().split()
    step = ("hang", "fail", "ok")[min(len(runs), 2)]
    with open(runs_path, "a") as fh:
        fh.write(step + "\n")
    if step == "hang":
        threading.Event().wait(120)
    elif step == "fail":
        raise RuntimeError("a transient failure of the redelivered run")


@dramatiq.actor(actor_name="tests.noop", queue_name=QUEUE, max_retries=0)
def noop(order_id: int) -> None:
    """Does nothing: shows that a worker still consumes."""


@dramatiq.actor(
    actor_name="tests.fails_until_fixed",
    queue_name=QUEUE,
    max_retries=1,
    min_backoff=100,
    max_backoff=200,
)
def fails_until_fixed(fix_path: str) -> None:
    """Fails while ``fix_path`` does not exist: the operator 'fixes the cause' by creating it."""
    if not os.path.exists(fix_path):
        raise RuntimeError("the cause is not fixed yet")


@dramatiq.actor(actor_name="tests.kills_its_worker", queue_name=QUEUE, max_retries=0)
def kills_its_worker(deliveries_path: str) -> None:
    """Each delivery appends a line (the fault's evidence), then the worker process dies."""
    with open(deliveries_path, "a") as fh:
        fh.write("delivery\n")
    os._exit(3)


@dramatiq.actor(actor_name="tests.touch", queue_name=QUEUE, max_retries=0)
def touch(path: str, order_id: int | None = None) -> None:
    """Creates ``path``: the visible effect of a job that ran (or, when cancelled, did not)."""
    with open(path, "a") as fh:
        fh.write("ran\n")


@dramatiq.actor(actor_name="tests.hangs_until_killed", queue_name=QUEUE, max_retries=0)
def hangs_until_killed(runs_path: str, times: int) -> None:
    """Its first ``times`` runs append their pid and hang until the test kills that process from
    outside; the next run finishes: an innocent that happened to be running at each kill."""
    with open(runs_path, "a+") as fh:
        fh.seek(0)
        runs = len(fh.read().splitlines())
        fh.write(f"{os.getpid()}\n")
    if runs < times:
        threading.Event().wait(120)
