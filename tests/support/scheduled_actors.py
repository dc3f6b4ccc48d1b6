"""A test actor and a fast schedule for scheduler tests (``SHOPJOBS_SCHEDULE_MODULE`` points here).

Nothing consumes the ``tests`` queue during these tests, so every published fire stays there
to be counted.
"""

from __future__ import annotations

import dramatiq

import broker  # noqa: F401  (the project's broker and middleware stack)
from shop.scheduling.entries import Entry

QUEUE = "tests"
MODULE = __name__
ACTOR_MODULES: tuple[str, ...] = ()  # this module declares its own actor

EVERY_SECOND = "tests.every-second"
EVEN_SECONDS = "tests.even-seconds"


@dramatiq.actor(actor_name="tests.tick", queue_name=QUEUE, max_retries=0)
def tick(schedule: str) -> None:
    """Does nothing: the message itself is what the tests count."""


ENTRIES = [
    Entry(
        name=EVERY_SECOND,
        actor="tests.tick",
        every_s=1,
        tz="Europe/Berlin",
        args=(EVERY_SECOND,),
        misfire="catch_up",
        grace_s=10,
    ),
    Entry(
        name=EVEN_SECONDS,
        actor="tests.tick",
        cron="*/2 * * * * *",
        tz="Europe/Berlin",
        args=(EVEN_SECONDS,),
        misfire="skip",
    ),
]
