"""CrashGuard: a message that keeps killing its worker is parked as dead, not redelivered forever.

Stock Dramatiq redelivers a message whose worker died (os._exit, SIGKILL, out of memory) again
and again. A worker that dies takes down every job running beside the culprit, and the broker
cannot say which one did it. So every message that comes back after a crash (the broker's
redelivered flag, minus the ones a worker handed back unstarted) is a suspect and runs *alone*
in its process: the other threads finish what they run and wait. Its lone start is committed
before it runs; if the process dies during that lone run, nothing else was running. One such
death could still be a kill from outside (an operator, the OOM killer, a deploy) that happened
to land on an innocent's lone run, so the message is the culprit only when its process died
during two of its lone runs (``jobcore.ledger.store.LONE_DEATHS``); its next delivery is then
failed and rejected to the dead letters with reason "crashed worker".

Bounds: a culprit is delivered four times (its crash among others, two lone crashes, the
delivery that parks it) and runs three times; a bystander is never parked, whatever ran beside
it, and an innocent only if outside kills land on two of its lone runs in a row.
A suspect that cannot get its process alone within ``alone_within_s`` (a neighbour runs a long
job) runs beside the others, unrecorded, and stays a suspect.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from dramatiq import Broker, Middleware
from dramatiq.broker import MessageProxy
from dramatiq.middleware import SkipMessage

from jobcore.ledger.store import Redelivery
from jobcore.metrics.failures import counts_failures

logger = logging.getLogger("shopjobs.crash_guard")

_SHARED, _ALONE = "crash_guard_shared", "crash_guard_alone"


class CrashLoop(SkipMessage):
    """Parked: its worker died during two of its lone runs (``LONE_DEATHS``)."""


class _Solitude:
    """A readers-writer lock: jobs share the process; a suspect waits for it to empty and runs alone.

    Waiting suspects go first, so a busy process still empties for them.
    """

    def __init__(self) -> None:
        # every job shares and unshares: those take the lock itself (a C call), not through the
        # Condition's Python methods, and wake waiters only when a suspect waits
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._running = 0
        self._alone = False
        self._waiting = 0

    def share(self) -> None:
        with self._lock:
            while self._alone or self._waiting:
                self._cond.wait()
            self._running += 1

    def unshare(self) -> None:
        with self._lock:
            self._running -= 1
            if self._running == 0 and self._waiting:
                self._cond.notify_all()  # a suspect waits for the process to empty

    def be_alone(self, timeout: float) -> bool:
        with self._cond:
            self._waiting += 1
            got = False
            try:
                got = self._cond.wait_for(lambda: not self._alone and self._running == 0, timeout)
                if got:
                    self._alone = True
            finally:
                self._waiting -= 1
                if not got:
                    self._cond.notify_all()
            return got

    def end_alone(self) -> None:
        with self._cond:
            self._alone = False
            self._cond.notify_all()


@counts_failures
class CrashGuard(Middleware):
    """Parameters:
    classify: (message_id, actor, queue) -> why a redelivered message came back; records its start.
    start_lone_run, end_lone_run: commit that a suspect runs alone now, and that it ended.
    alone_within_s: how long a suspect waits for its process to empty.
    """

    def __init__(
        self,
        classify: Callable[[str, str, str], Redelivery],
        start_lone_run: Callable[[str, str], None],
        end_lone_run: Callable[[str], None],
        alone_within_s: float = 30.0,
    ) -> None:
        self.classify = classify
        self.start_lone_run = start_lone_run
        self.end_lone_run = end_lone_run
        self.alone_within_s = alone_within_s
        self._solitude = _Solitude()

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        if getattr(message, "redelivered", False):
            verdict = self.classify(message.message_id, message.actor_name, message.queue_name)
            if verdict is Redelivery.CULPRIT:
                message.fail()
                raise CrashLoop("crashed worker: its worker died during two of its lone runs")
            if verdict is Redelivery.SUSPECT and self._run_alone(message):
                return
        self._solitude.share()
        setattr(message, _SHARED, True)

    def _run_alone(self, message: MessageProxy) -> bool:
        if not self._solitude.be_alone(self.alone_within_s):
            logger.warning(
                "crash suspect %r runs beside others: its process did not empty in %.0f s",
                message.message_id,
                self.alone_within_s,
            )
            return False
        try:
            self.start_lone_run(message.message_id, message.actor_name)
        except BaseException:
            self._solitude.end_alone()
            raise
        setattr(message, _ALONE, True)
        logger.warning(
            "crash suspect %r (%s) runs alone in this process",
            message.message_id,
            message.actor_name,
        )
        return True

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if getattr(message, _SHARED, False):
            setattr(message, _SHARED, False)
            self._solitude.unshare()
        elif getattr(message, _ALONE, False):
            setattr(message, _ALONE, False)
            try:
                self.end_lone_run(message.message_id)
            finally:
                self._solitude.end_alone()

    after_skip_message = after_process_message
