"""CrashGuard: a message that keeps killing its worker is parked as dead, not redelivered forever.

Stock Dramatiq redelivers a message whose worker died (os._exit, SIGKILL, out of memory) again
and again. Here a redelivered message counts as a crash suspect when the ledger shows its
previous delivery started (state running) and never finished; messages prefetched but never
started are redelivered too, but do not count.

A worker that dies takes down every job running beside the culprit, so the guard does not
park a suspect on its first crash: it re-runs it later (after a delay), and suspects run one
at a time in a worker process (a lock), so the neighbours and the culprit part ways. A suspect whose start is then
recorded (synchronously) and which crashes again is the culprit: it is failed and rejected to
the dead-letter queue with reason "crashed worker", without running a third time.

Bounds: the culprit runs twice (three times if it kills its worker within the ledger's 50 ms
flush of its very first start) and is parked on its 4th delivery (5th); a neighbour is
parked only if it dies beside the culprit twice, which the one-suspect-at-a-time rule rules
out within a process.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

from dramatiq import Broker, Middleware
from dramatiq.broker import MessageProxy
from dramatiq.middleware import SkipMessage

from shop.metrics.failures import counts_failures

SUSPECT_OPTION = "crash_suspect"
DEFERRED_ATTRIBUTE = "crash_deferred_ms"
_HOLDS_LOCK = "crash_suspect_lock_held"


class CrashLoop(SkipMessage):
    """Parked: the message crashed its worker again when re-run on its own."""


class CrashSuspect(SkipMessage):
    """Deferred: its worker died while running it; it runs again later, apart from the others."""


@counts_failures
class CrashGuard(Middleware):
    """Parameters:
      count_redelivery: records a (re)start of (message_id, actor, queue) in the ledger and
        returns how many deliveries crashed.
      max_crashes: crashes after which a message is parked.
      isolation_ms, spread_ms: a suspect re-runs after isolation_ms x crashes plus a random
        0..spread_ms.
    """

    def __init__(
        self,
        count_redelivery: Callable[[str, str, str], int],
        max_crashes: int = 2,
        isolation_ms: int = 1000,
        spread_ms: int = 5000,
    ) -> None:
        self.count_redelivery = count_redelivery
        self.max_crashes = max_crashes
        self.isolation_ms = isolation_ms
        self.spread_ms = spread_ms
        self._suspects = threading.Lock()

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        redelivered = bool(getattr(message, "redelivered", False))
        if not redelivered and SUSPECT_OPTION not in message.options:
            return
        if SUSPECT_OPTION in message.options and not redelivered:
            # suspects run one at a time in this process; wait before the start is recorded,
            # so a suspect still waiting is not counted as running when the culprit kills us
            self._suspects.acquire()
            setattr(message, _HOLDS_LOCK, True)
        crashes = self.count_redelivery(message.message_id, message.actor_name, message.queue_name)
        if crashes >= self.max_crashes:
            message.fail()
            raise CrashLoop(f"crashed worker: its worker died {crashes} times while running it")
        if crashes > 0 and redelivered:
            delay = self.isolation_ms * crashes + random.randint(0, self.spread_ms)
            options: dict[str, Any] = {**message.options, SUSPECT_OPTION: crashes}
            options.pop("eta", None)
            broker.enqueue(message._message.copy(options=options), delay=delay)
            setattr(message, DEFERRED_ATTRIBUTE, delay)
            raise CrashSuspect(f"its worker died while running it; re-run alone in {delay} ms")

    def after_process_message(
        self, broker: Broker, message: MessageProxy, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        if getattr(message, _HOLDS_LOCK, False):
            setattr(message, _HOLDS_LOCK, False)
            self._suspects.release()

    after_skip_message = after_process_message  # type: ignore[assignment]
