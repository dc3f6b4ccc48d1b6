"""DurableSends: a job's sends are committed with its outcome, before its message is acked.

At the top of the stack, so its ``before_process_message`` runs before the actor and its
``after_*`` hooks run last: after Retries, Compensation, Pipelines and Callbacks have made
their sends. The broker (``jobcore.sends.DurableSendsBroker``) buffers every send of the
job's thread; JobStatus hands its final change over instead of recording it; here both go to
the ledger writer as one change, so they commit in one transaction and the deferred ack
follows that commit. The relay publishes the sends after it.
"""

from __future__ import annotations

import logging
from typing import Any

from dramatiq import Broker, Middleware
from dramatiq.broker import MessageProxy

from jobcore import sends
from jobcore.acks import TICKET_ATTRIBUTE
from jobcore.ledger.writer import LedgerWriter
from jobcore.metrics.failures import counts_failures

logger = logging.getLogger(__name__)


@counts_failures
class DurableSends(Middleware):
    """Buffers a running job's sends and records them with the job's final ledger change.

    Parameters:
      writer: the process's ledger writer (its batch is the job's outcome transaction).
    """

    def __init__(self, writer: LedgerWriter) -> None:
        self.writer = writer

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        sends.begin()
        setattr(message, sends.FINAL_CHANGE_ATTRIBUTE, None)

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        self._record(message)

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        self._record(message)

    def _record(self, message: MessageProxy) -> None:
        buffered = sends.end()
        change = getattr(message, sends.FINAL_CHANGE_ATTRIBUTE, None)
        if hasattr(message, sends.FINAL_CHANGE_ATTRIBUTE):
            delattr(message, sends.FINAL_CHANGE_ATTRIBUTE)  # a later reject records for itself
        if change is None:
            # no final state to join (the ledger was bypassed): commit the sends on their own
            if buffered:
                sends.store_sends(buffered)
                self._wake()
            return
        change.sends = buffered or None
        setattr(message, TICKET_ATTRIBUTE, self.writer.record(change, urgent=True))

    def _wake(self) -> None:
        if self.writer.sends_committed is not None:
            self.writer.sends_committed()
