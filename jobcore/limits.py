"""Global limits in PostgreSQL: at most N holders of a key at once, at most R takes per second.

Dramatiq's ``ConcurrentRateLimiter`` and ``BucketRateLimiter`` need Redis or Memcached; these
keep the same contract on the database the stack already has. A limit that cannot be had within
its ``wait_ms`` raises ``LimitExceeded``, a ``TransientError``: ``Retries`` retries the job with
backoff, as Dramatiq's ``RateLimitExceeded`` is meant to be handled. ``wait_ms=0`` never waits.

Concurrency: ``job_limit_slots`` holds ``limit`` rows per key; a holder leases a free one (one
``UPDATE`` over a ``FOR UPDATE SKIP LOCKED`` pick) until ``now + lease_ms`` and frees it when
done. A holder that dies (SIGKILL, a lost host) never frees it: the lease running out does, or
sooner a waiter on the same host that finds the holder's process gone (a holder is named
``host:pid:nonce``), so a killed worker process does not keep its replacement waiting for the
slots it held. The lease must outlast the work it guards (an HTTP call: the client's timeout
plus a margin).

Rate: ``job_rate_buckets`` holds a token bucket per key (``rate`` per second, at most ``burst``,
``rate`` by default). A take is one upsert that refills by the database clock and reserves the
next token, letting the level go below zero by at most what ``wait_ms`` can wait out; the taker
sleeps until its token exists. So takers are served in order with one statement each (nobody
polls), no two processes spend the same token, and over any ``t`` seconds at most
``burst + rate * t`` takes go ahead. A reservation whose taker dies is simply not used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator

from jobcore.db import get_engine
from jobcore.errors import InvalidSend, TransientError
from jobcore.models.workflow import KEY_LENGTH

_pause = threading.Event()  # never set: an interruptible sleep


class LimitExceeded(TransientError):
    """A limit could not be had within its wait; retry the job later (with backoff)."""


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not key or len(key) > KEY_LENGTH:
        raise InvalidSend(f"a limit key must be 1 to {KEY_LENGTH} characters, got {key!r}")


def _check_ms(value: int, what: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidSend(f"{what} must be an integer of at least {minimum} ms, got {value!r}")


_ENSURE_SLOTS = """
INSERT INTO job_limit_slots (key, slot) SELECT %(key)s, generate_series(1, %(limit)s)
ON CONFLICT DO NOTHING
RETURNING slot
"""
_ACQUIRE = """
UPDATE job_limit_slots s
SET holder = %(holder)s, expires_at = clock_timestamp() + make_interval(secs => %(lease_s)s)
WHERE (s.key, s.slot) = (
    SELECT key, slot FROM job_limit_slots
    WHERE key = %(key)s AND slot <= %(limit)s
      AND (holder IS NULL OR expires_at <= clock_timestamp())
    ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING s.slot
"""
_RELEASE = """
UPDATE job_limit_slots SET holder = NULL, expires_at = NULL
WHERE key = %(key)s AND slot = %(slot)s AND holder = %(holder)s
"""
# the holders of a key's leased slots on one host, to find those whose process is gone
_HOLDERS_ON_HOST = """
SELECT COALESCE(array_agg(holder), '{}') FROM job_limit_slots
WHERE key = %(key)s AND starts_with(holder, %(prefix)s) AND expires_at > clock_timestamp()
"""
_FREE_HOLDERS = """
UPDATE job_limit_slots SET holder = NULL, expires_at = NULL
WHERE key = %(key)s AND holder = ANY(%(holders)s)
"""
_ensured: set[tuple[int, str, int]] = set()


def _execute(sql: str, params: dict[str, object]) -> tuple[object, ...] | None:
    """One statement in a transaction of its own; the first row it returns, if any."""
    raw = get_engine().raw_connection()
    try:
        cursor = raw.cursor()
        try:
            cursor.execute(sql, params)
            row = cursor.fetchone() if cursor.description else None
        finally:
            cursor.close()
        raw.commit()
    finally:
        raw.close()
    return None if row is None else tuple(row)


@dataclasses.dataclass(frozen=True)
class ConcurrencyLimit:
    """At most ``limit`` holders of ``key`` at once, across every process and host.

    Parameters:
      key: what is limited (``"payments"``), at most 200 characters.
      limit: holders at once, at least 1.
      lease_ms: how long a holder keeps its slot unless it frees it first.
      wait_ms: how long ``hold()`` waits for a slot before ``LimitExceeded``.
    """

    key: str
    limit: int
    lease_ms: int = 30_000
    wait_ms: int = 10_000

    def __post_init__(self) -> None:
        _check_key(self.key)
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1:
            raise InvalidSend(
                f"concurrency limit of {self.key!r} must be at least 1, got {self.limit!r}"
            )
        _check_ms(self.lease_ms, "lease_ms", 1)
        _check_ms(self.wait_ms, "wait_ms", 0)

    def acquire(self) -> tuple[int, str] | None:
        """Lease a free slot now: ``(slot, holder)``, or None when all are taken."""
        ensured = (os.getpid(), self.key, self.limit)
        made_now = ensured not in _ensured
        if made_now:
            _execute(_ENSURE_SLOTS, {"key": self.key, "limit": self.limit})
            _ensured.add(ensured)
        holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        params = {
            "key": self.key,
            "limit": self.limit,
            "holder": holder,
            "lease_s": self.lease_ms / 1000,
        }
        row = _execute(_ACQUIRE, params)
        # Every slot taken, or the rows this process made are gone (a TRUNCATE, a restore):
        # make the missing ones and, if there were any, look again at once. A vanished row
        # never makes a taker wait out a lease it does not hold.
        if (
            row is None
            and not made_now
            and _execute(_ENSURE_SLOTS, {"key": self.key, "limit": self.limit}) is not None
        ):
            row = _execute(_ACQUIRE, params)
        if row is None:
            return None
        return int(row[0]), holder  # type: ignore[call-overload]

    def release(self, slot: int, holder: str) -> None:
        _execute(_RELEASE, {"key": self.key, "slot": slot, "holder": holder})

    def free_dead_holders(self) -> int:
        """Free the slots of holders on this host whose process is gone; how many were freed."""
        prefix = f"{socket.gethostname()}:"
        row = _execute(_HOLDERS_ON_HOST, {"key": self.key, "prefix": prefix})
        holders = list(row[0]) if row else []  # type: ignore[call-overload]
        dead = [h for h in holders if not _alive(h.removeprefix(prefix).split(":", 1)[0])]
        if dead:
            _execute(_FREE_HOLDERS, {"key": self.key, "holders": dead})
        return len(dead)

    @contextlib.contextmanager
    def hold(self) -> Iterator[int]:
        """Hold a slot for the block (waiting up to ``wait_ms``); yields the slot number."""
        deadline = time.monotonic() + self.wait_ms / 1000
        pause = 0.005
        look_for_dead = 0.0  # when to look for holders whose process is gone (once a second)
        while (leased := self.acquire()) is None:
            now = time.monotonic()
            if now >= look_for_dead:
                look_for_dead = now + 1.0
                if self.free_dead_holders():
                    continue
            left = deadline - now
            if left <= 0:
                raise LimitExceeded(
                    f"all {self.limit} slots of {self.key!r} stayed taken for {self.wait_ms} ms;"
                    " retry later"
                )
            _pause.wait(min(left, pause * random.uniform(0.5, 1.5)))
            pause = min(pause * 2, 0.1)
        slot, holder = leased
        try:
            yield slot
        finally:
            self.release(slot, holder)


def _alive(pid: str) -> bool:
    """Whether process ``pid`` of this host exists (a malformed pid counts as alive)."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (ValueError, PermissionError, OverflowError):
        return True
    return True


# A reservation (GCRA): a take always spends a token, and the level may go below zero down to
# what ``wait_ms`` can wait out; the taker then sleeps until its token exists (-level / rate).
# Takers are served in the order of their statements, with one statement each: no polling.
_TAKE = """
INSERT INTO job_rate_buckets AS b (key, tokens, updated_at)
VALUES (%(key)s, %(burst)s - 1, clock_timestamp())
ON CONFLICT (key) DO UPDATE SET
    tokens = LEAST(%(burst)s, b.tokens
        + extract(epoch FROM EXCLUDED.updated_at - b.updated_at) * %(rate)s) - 1,
    updated_at = EXCLUDED.updated_at
WHERE LEAST(%(burst)s, b.tokens
    + extract(epoch FROM EXCLUDED.updated_at - b.updated_at) * %(rate)s) - 1
    >= -%(rate)s * %(wait_s)s
RETURNING b.tokens
"""


@dataclasses.dataclass(frozen=True)
class RateLimit:
    """At most ``rate`` takes of ``key`` per second (``burst`` at once), across every process.

    Parameters:
      key: what is limited (``"sms"``), at most 200 characters.
      rate: tokens per second, above 0.
      burst: the most tokens saved up (default: ``rate`` rounded up, at least 1).
      wait_ms: how long ``take()`` waits for a token before ``LimitExceeded``.
    """

    key: str
    rate: float
    burst: int | None = None
    wait_ms: int = 10_000

    def __post_init__(self) -> None:
        _check_key(self.key)
        if (
            isinstance(self.rate, bool)
            or not isinstance(self.rate, int | float)
            or not math.isfinite(self.rate)
            or self.rate <= 0
        ):
            raise InvalidSend(f"rate of {self.key!r} must be above 0 per second, got {self.rate!r}")
        if self.burst is not None and (
            isinstance(self.burst, bool) or not isinstance(self.burst, int) or self.burst < 1
        ):
            raise InvalidSend(f"burst of {self.key!r} must be at least 1, got {self.burst!r}")
        _check_ms(self.wait_ms, "wait_ms", 0)

    @property
    def capacity(self) -> int:
        return self.burst if self.burst is not None else max(1, math.ceil(self.rate))

    def reserve(self) -> float | None:
        """Reserve the next token: the seconds until it exists (0.0: now), or None when that
        is further away than ``wait_ms``."""
        row = _execute(
            _TAKE,
            {
                "key": self.key,
                "rate": float(self.rate),
                "burst": float(self.capacity),
                "wait_s": self.wait_ms / 1000,
            },
        )
        if row is None:
            return None
        return max(0.0, -float(row[0]) / self.rate)  # type: ignore[arg-type]

    def take(self) -> None:
        """Take a token, waiting up to ``wait_ms`` for it; else ``LimitExceeded`` at once."""
        wait = self.reserve()
        if wait is None:
            raise LimitExceeded(
                f"rate limit of {self.key!r} ({self.rate:g}/s) has no token within"
                f" {self.wait_ms} ms; retry later"
            )
        if wait > 0:
            _pause.wait(wait)
