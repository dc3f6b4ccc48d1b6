"""Actors for the unique-job tests, loaded as an extra worker module."""

from __future__ import annotations

import os
import threading

import dramatiq

import broker  # noqa: F401  (the project's broker and middleware stack)
from tests.support.faulty_actors import touch

QUEUE = "tests"


@dramatiq.actor(actor_name="tests.send_unique_twice", queue_name=QUEUE, max_retries=0)
def send_unique_twice(path: str, key: str) -> None:
    """Sends ``tests.touch`` twice under one unique key: the job's commit keeps the first."""
    for _ in range(2):
        touch.send_with_options(args=(path,), unique_key=key, unique_for=60_000)


@dramatiq.actor(actor_name="tests.touch_after_gate", queue_name=QUEUE, max_retries=0)
def touch_after_gate(path: str, gate: str) -> None:
    """Runs until ``gate`` exists (at most 60 s), then appends a line to ``path``."""
    opened = threading.Event()
    for _ in range(1200):
        if os.path.exists(gate):
            break
        opened.wait(0.05)
    with open(path, "a") as fh:
        fh.write("ran\n")


def _export_key(path: str, gate: str, report_id: int) -> str:
    return f"export:{report_id}"


@dramatiq.actor(
    actor_name="tests.export_once",
    queue_name=QUEUE,
    max_retries=0,
    unique_key=_export_key,
    unique_for=60_000,
)
def export_once(path: str, gate: str, report_id: int) -> None:
    """Unique per report by its actor's options: the key is derived from the args."""
    touch_after_gate(path, gate)
