"""Actors and boot faults for the supervisor's tests: a job the test holds, a worker that dies."""

from __future__ import annotations

import os
import threading

import dramatiq

import broker  # noqa: F401  (the project's broker and middleware stack)

QUEUE = "tests"
DIE_AFTER_ENV = "SHOPJOBS_TEST_DIE_AFTER_BOOT_S"
_pause = threading.Event()


@dramatiq.actor(actor_name="tests.hold", queue_name=QUEUE, max_retries=0)
def hold(marker_dir: str, name: str) -> None:
    """Records the process that runs it, then runs until the test releases it (or 60 s pass)."""
    path = os.path.join(marker_dir, name)
    with open(f"{path}.started", "a") as fh:
        fh.write(f"{os.getpid()}\n")
    for _ in range(1200):
        if os.path.exists(f"{path}.release"):
            break
        _pause.wait(0.05)
    with open(f"{path}.done", "a") as fh:
        fh.write(f"{os.getpid()}\n")


if os.environ.get(DIE_AFTER_ENV):  # a worker process that boots, then dies: a crash loop
    threading.Timer(float(os.environ[DIE_AFTER_ENV]), os._exit, (9,)).start()
