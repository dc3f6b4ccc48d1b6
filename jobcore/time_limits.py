"""Every job must end before RabbitMQ's ``consumer_timeout`` closes its channel.

RabbitMQ closes a channel whose delivery stays unacked past ``consumer_timeout`` (406
PRECONDITION_FAILED) and redelivers what it held: a job still running then runs a second time
beside itself. Dramatiq's ``TimeLimit`` ends a job at its actor's ``time_limit`` (or the
middleware's default), so each limit must end at least ``CONSUMER_TIMEOUT_MARGIN_S`` before the
timeout. ``too_long`` finds the actors that do not, for the queues a worker consumes.

A limit under the timeout is not the whole bound: a delivery the worker has prefetched stays
unacked while it waits for a thread, and the jobs ahead of it may each run to their limit.
``unacked_bound_s`` is that worst case, which the worker logs as a warning when it passes the
timeout (jobs rarely run to their limit, so it does not refuse to start).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

from dramatiq import Broker
from dramatiq.middleware import TimeLimit

from jobcore.settings import CONSUMER_TIMEOUT_MARGIN_S, PREFIX

SHOWN = 10  # actors named in the refusal; the rest are counted


@dataclasses.dataclass(frozen=True)
class Limit:
    """An actor's effective time limit in ms (None: it has none, the stack has no TimeLimit)."""

    actor: str
    limit_ms: float | None


class TimeLimitTooLong(RuntimeError):
    """An actor may run past consumer_timeout; the message names it, its limit and the timeout."""


def limits(broker: Broker, queues: Iterable[str] | None = None) -> list[Limit]:
    """The effective time limit of every actor of ``queues`` (every queue when None), as
    ``TimeLimit`` applies it: the actor's ``time_limit`` option, else the middleware's default."""
    default = next((m.time_limit for m in broker.middleware if isinstance(m, TimeLimit)), None)
    wanted = set(queues) if queues else None
    found = []
    for name in sorted(broker.get_declared_actors()):
        actor = broker.get_actor(name)
        if wanted is not None and actor.queue_name not in wanted:
            continue
        limit = actor.options.get("time_limit", default) if default is not None else None
        found.append(Limit(name, limit))
    return found


def too_long(found: Iterable[Limit], consumer_timeout_s: int) -> list[Limit]:
    """The limits that do not end at least the margin before ``consumer_timeout_s``."""
    ceiling_ms = (consumer_timeout_s - CONSUMER_TIMEOUT_MARGIN_S) * 1000
    return [x for x in found if x.limit_ms is None or x.limit_ms > ceiling_ms]


def _longest_first(limit: Limit) -> tuple[bool, float]:
    return (limit.limit_ms is not None, -(limit.limit_ms or 0))


def check(broker: Broker, consumer_timeout_s: int, queues: Iterable[str] | None = None) -> Limit:
    """Raise ``TimeLimitTooLong`` naming every actor whose limit is too long; else return the
    longest limit (an empty actor name when the queues have no actors)."""
    found = limits(broker, queues)
    bad = sorted(too_long(found, consumer_timeout_s), key=_longest_first)
    if bad:
        listed = ", ".join(
            f"{x.actor} ({'no limit' if x.limit_ms is None else f'{x.limit_ms / 1000:g} s'})"
            for x in bad[:SHOWN]
        ) + (f" and {len(bad) - SHOWN} more" if len(bad) > SHOWN else "")
        raise TimeLimitTooLong(
            f"{len(bad)} actor(s) may run past RabbitMQ's consumer_timeout of "
            f"{consumer_timeout_s} s ({PREFIX}CONSUMER_TIMEOUT_S): {listed}. A time limit must "
            f"be at most {consumer_timeout_s - CONSUMER_TIMEOUT_MARGIN_S} s "
            f"({CONSUMER_TIMEOUT_MARGIN_S} s below it): RabbitMQ closes the channel of a job "
            "still running at the timeout and redelivers it, so it runs twice at once. Lower "
            f"the actor's time_limit, or raise consumer_timeout on the broker and "
            f"{PREFIX}CONSUMER_TIMEOUT_S with it"
        )
    return max(found, key=lambda x: x.limit_ms or 0, default=Limit("", 0))


def unacked_bound_s(longest_ms: float, prefetched: int, threads: int) -> float:
    """The longest a delivery may stay unacked if every job runs to ``longest_ms``: the last of
    ``prefetched`` deliveries waits ``ceil(prefetched / threads) - 1`` rounds of jobs on
    ``threads`` threads, then runs one itself."""
    rounds = max(1, math.ceil(prefetched / max(1, threads)))
    return rounds * longest_ms / 1000


def prefetch_warning(
    longest: Limit, prefetched: int, threads: int, consumer_timeout_s: int
) -> str | None:
    """What to tell the operator when a prefetched delivery may outwait ``consumer_timeout``."""
    bound = unacked_bound_s(longest.limit_ms or 0, prefetched, threads)
    if bound <= consumer_timeout_s - CONSUMER_TIMEOUT_MARGIN_S:
        return None
    return (
        f"a prefetched delivery may stay unacked up to {bound:.0f} s, past consumer_timeout "
        f"{consumer_timeout_s} s, if the jobs ahead of it run to their limits ({prefetched} "
        f"prefetched over {threads} threads; {longest.actor} may run "
        f"{(longest.limit_ms or 0) / 1000:.0f} s): RabbitMQ would then close the channel and "
        "redeliver what it holds. Run the actors with long limits in a worker group of their "
        "own with a small prefetch (dramatiq_queue_prefetch), or raise consumer_timeout"
    )
