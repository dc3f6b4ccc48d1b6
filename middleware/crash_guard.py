"""CrashGuard: a message that keeps killing its worker is parked as dead, not redelivered forever.

Stock Dramatiq redelivers a message whose worker died (os._exit, SIGKILL, out of memory) again
and again. Each redelivery of a message is counted in PostgreSQL (one statement, only for
redelivered messages); redeliveries of messages a worker handed back unstarted (shutdown, lost
connection) are marked by the consumer and not counted. At ``max_crashes`` the message is
failed and rejected to the dead-letter queue with reason "crashed worker", without running.
"""

from __future__ import annotations

from collections.abc import Callable

from dramatiq import Broker, Middleware
from dramatiq.broker import MessageProxy
from dramatiq.middleware import SkipMessage


class CrashLoop(SkipMessage):
    """Parked: the message's earlier deliveries all ended with their worker dying."""


class CrashGuard(Middleware):
    """Parameters:
      count_redelivery: records one redelivery of (message_id, actor, queue); returns the count.
      max_crashes: crashed deliveries after which a message is parked (2 = at most 3 deliveries).
    """

    def __init__(self, count_redelivery: Callable[[str, str, str], int], max_crashes: int = 2) -> None:
        self.count_redelivery = count_redelivery
        self.max_crashes = max_crashes

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        if not getattr(message, "redelivered", False):
            return
        crashes = self.count_redelivery(message.message_id, message.actor_name, message.queue_name)
        if crashes >= self.max_crashes:
            message.fail()
            raise CrashLoop(f"crashed worker: {crashes} redeliveries after its worker died while running it")
