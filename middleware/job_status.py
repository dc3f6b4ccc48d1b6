"""JobStatus: records every message's life in the PostgreSQL job ledger.

Non-final states (enqueued, running) are buffered and written within ``flush_ms``. A final
state (succeeded, retrying, failed, skipped, dead) is committed before the message is acked
or rejected, so a crash leaves either a redelivery or a recorded outcome, never a finished
job shown as running. With ``LedgerAckedRabbitmqBroker`` the consumer defers the ack until
the commit; with any other broker the worker thread waits for it in ``before_ack``. A job's
return value travels in the same write as its ``succeeded`` state.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

import dramatiq
import dramatiq.worker
from dramatiq import Broker, Middleware
from dramatiq.broker import MessageProxy
from dramatiq.errors import ActorNotFound
from dramatiq.middleware import MiddlewareError, SkipMessage

from jobcore import unique as uniqueness
from jobcore.acks import TICKET_ATTRIBUTE
from jobcore.groups import GROUP_OPTION
from jobcore.ledger.args import ledger_fields, result_json
from jobcore.ledger.states import State
from jobcore.ledger.writer import Change, LedgerWriter, now
from jobcore.metrics.failures import counts_failures
from jobcore.outbox import LEDGER_RECORDED_OPTION
from jobcore.redaction import scrub_text
from jobcore.sends import hand_over
from middleware.cancellations import CANCELLED_ATTRIBUTE

# set on a message whose sender's JobStatus records its args and ids with its 'enqueued' row
# (a direct send, outside a job and the outbox), so its worker does not redact them again
ARGS_AT_SEND_OPTION = "ledger_args_at_send"
MAX_ERROR_CHARS = 2000
MAX_TRACEBACK_CHARS = 16000
logger = logging.getLogger("shopjobs.ledger")


class LedgerUnavailable(MiddlewareError):
    """The ledger could not record a dedupe claim; the job is retried later, not run blind."""


def describe_error(exception: BaseException | None) -> str:
    if exception is None:
        return "rejected"
    return scrub_text(f"{type(exception).__name__}: {exception}")[:MAX_ERROR_CHARS]


@counts_failures
class JobStatus(Middleware):
    """Job-status tracking in PostgreSQL, keyed by Dramatiq's message_id.

    Parameters:
      writer: the process's ledger writer (batched, group-committed).
      args_max_bytes: size cap of the arguments kept per job.
      result_max_bytes: size cap of the return value kept per job (``args_max_bytes`` if None).
      already_finished: tells whether a redelivered message already finished; such a
        duplicate is skipped (and counted in the ledger) instead of run again.
      acks_deferred: the broker's consumers defer acks until the ledger commits (else the
        worker thread waits in ``before_ack``).
      prefetch_per_thread: unacked messages per worker thread when acks are deferred; it
        widens only Dramatiq's default, never a prefetch set in code or by
        ``dramatiq_queue_prefetch``.
      claim: records 'running' synchronously and says whether this delivery may run; used for
        actors with ``dedupe=True`` (money, stock, notification deliveries), whose duplicate copies are skipped.
    """

    @property
    def actor_options(self) -> set[str]:
        # unique_key / unique_for / on_duplicate: every send of the actor is unique (the ledger
        # decides when a holder is final; jobcore.unique); checked when the actor is declared
        # (DurableSendsBroker.declare_actor: a hook's error here would only be logged)
        return {"dedupe", *uniqueness.OPTIONS}

    def __init__(
        self,
        writer: LedgerWriter,
        *,
        args_max_bytes: int = 2048,
        result_max_bytes: int | None = None,
        already_finished: Callable[[str], bool] | None = None,
        acks_deferred: bool = False,
        prefetch_per_thread: int = 4,
        claim: Callable[[Change, int, bool], bool] | None = None,
    ) -> None:
        self.claim = claim
        self.prefetch_per_thread = prefetch_per_thread
        self.writer = writer
        self.args_max_bytes = args_max_bytes
        self.result_max_bytes = args_max_bytes if result_max_bytes is None else result_max_bytes
        self.already_finished = already_finished
        self.acks_deferred = acks_deferred

    def before_worker_boot(self, broker: Broker, worker: dramatiq.Worker) -> None:
        worker.queue_prefetch, why = self.choose_prefetch(worker)
        logger.info(
            "queue prefetch %d per queue for %d threads: %s",
            worker.queue_prefetch,
            worker.worker_threads,
            why,
        )

    def after_worker_shutdown(self, broker: Broker, worker: dramatiq.Worker) -> None:
        """Write what is buffered and stop the flusher: its connection closes with it.

        The consumers have handed back or acked everything by now (Worker.stop closes them
        before this hook), and ``atexit`` does not run in Dramatiq's worker processes.
        """
        self.writer.close()

    def choose_prefetch(self, worker: dramatiq.Worker) -> tuple[int, str]:
        """The worker's unacked window per queue, and why: widen Dramatiq's default only.

        With deferred acks a message stays unacked until its final state is committed, so
        Dramatiq's 2 per thread would leave threads idle waiting for a commit. A prefetch
        someone chose (in code, or by ``dramatiq_queue_prefetch``) is theirs to keep.
        """
        from_env = dramatiq.worker.QUEUE_PREFETCH  # what Dramatiq read from its variable
        default = from_env or min(worker.worker_threads * 2, 65535)  # as Worker.__init__ sets it
        if worker.queue_prefetch != default:
            return worker.queue_prefetch, "set in code"
        if from_env:
            return from_env, "set by dramatiq_queue_prefetch"
        if not self.acks_deferred:
            return default, "Dramatiq's default (2 per thread); acks are not deferred"
        widened = max(default, min(worker.worker_threads * self.prefetch_per_thread, 65535))
        return widened, (
            f"Dramatiq's default {default} widened to {self.prefetch_per_thread} per thread, "
            "because acks wait for the ledger commit"
        )

    @staticmethod
    def _change(message: Any, state: State, at: float, **extra: Any) -> Change:
        raw = getattr(message, "_message", message)  # past MessageProxy's __getattr__ (per job)
        return Change(
            message_id=raw.message_id,
            actor=raw.actor_name,
            queue=raw.queue_name.removesuffix(".DQ"),
            state=state,
            state_ts=at,
            group_id=raw.options.get(GROUP_OPTION),
            **extra,
        )

    def _described(self, broker: Broker, message: Any) -> dict[str, Any]:
        """Redacted args and business ids, computed once per delivery."""
        try:
            actor = broker.get_actor(message.actor_name)
        except ActorNotFound:
            actor = None
        return ledger_fields(actor, message, self.args_max_bytes)

    def _final(self, message: MessageProxy, change: Change) -> None:
        if hand_over(message, change):
            return  # DurableSends records it with the job's sends, after the last one
        setattr(message, TICKET_ATTRIBUTE, self.writer.record(change, urgent=True))

    @staticmethod
    def _new_direct_send(options: dict[str, Any], delay: int | None) -> bool:
        """A send this process records after publishing it (not through the outbox)."""
        if options.get(LEDGER_RECORDED_OPTION) or options.get("retries"):
            return False  # written in the business transaction, or a retry (recorded as retrying)
        return not (delay is None and "eta" in options)  # not a delayed message moving on

    def before_enqueue(
        self, broker: Broker, message: dramatiq.Message[Any], delay: int | None
    ) -> None:
        if self._new_direct_send(message.options, delay):
            # its args and ids are recorded here at send (after_enqueue): the worker keeps them
            message.options[ARGS_AT_SEND_OPTION] = True

    def after_enqueue(
        self, broker: Broker, message: dramatiq.Message[Any], delay: int | None
    ) -> None:
        if not self._new_direct_send(message.options, delay):
            return
        at = now()
        eta = at + delay / 1000 if delay else None
        described = self._described(broker, message)
        enqueued = self._change(message, State.ENQUEUED, at, enqueued_at=at, eta=eta, **described)
        self.writer.record(enqueued)

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        redelivered = bool(getattr(message, "redelivered", False))
        at = now()
        enqueued_at = message.message_timestamp / 1000 if message.message_timestamp else None
        dedupe = self.claim is not None and self._dedupe(broker, message)
        # a message sent through the outbox or a job's commit has its row, args and ids
        # already (the upsert keeps them), and a direct send's sender records them: redacting
        # them again was ~5 % of a worker's CPU
        options = message.options
        recorded = (
            options.get(LEDGER_RECORDED_OPTION) or options.get(ARGS_AT_SEND_OPTION)
        ) and not dedupe
        described = {} if recorded else self._described(broker, message)
        running = self._change(
            message,
            State.RUNNING,
            at,
            started_at=at,
            attempts=1,
            enqueued_at=enqueued_at,
            **described,
        )
        if dedupe and self.claim is not None:
            attempt = message.options.get("retries", 0) + 1
            try:
                claimed = self.claim(running, attempt, redelivered)
            except Exception as exc:
                # unlike other hook errors this one must stop the job: it may be a duplicate
                raise LedgerUnavailable(f"could not claim {message.message_id!r}: {exc}") from exc
            if not claimed:
                raise SkipMessage("duplicate delivery, or a cancelled job")
            return
        if (
            redelivered
            and self.already_finished is not None
            and self.already_finished(message.message_id)
        ):
            raise SkipMessage("duplicate delivery of a finished job")
        self.writer.start(running)  # written with the outcome, or on its own if the job runs on

    @staticmethod
    def _dedupe(broker: Broker, message: MessageProxy) -> bool:
        if "dedupe" in message.options:
            return bool(message.options["dedupe"])
        try:
            return bool(broker.get_actor(message.actor_name).options.get("dedupe", False))
        except ActorNotFound:
            return False

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        at = now()
        if exception is None:
            kept = result_json(result, self.result_max_bytes)
            succeeded = self._change(message, State.SUCCEEDED, at, finished_at=at, result=kept)
            self._final(message, succeeded)
            return
        self._final(
            message,
            self._change(
                message,
                State.FAILED if message.failed else State.RETRYING,
                at,
                finished_at=at,
                error=describe_error(exception),
                traceback=scrub_text("".join(traceback.format_exception(exception)))[
                    -MAX_TRACEBACK_CHARS:
                ],
            ),
        )

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        at = now()
        if getattr(message, CANCELLED_ATTRIBUTE, False):
            change = self._change(message, State.CANCELLED, at, finished_at=at)
        elif message.failed:  # parked (a crash loop, the age limit): it goes to the dead letters
            exception = getattr(message, "_exception", None)
            change = self._change(
                message,
                State.DEAD,
                at,
                finished_at=at,
                error=describe_error(exception),
                **self._described(broker, message),
            )
        else:
            change = self._change(message, State.SKIPPED, at, duplicates=1)
        self._final(message, change)

    def before_ack(self, broker: Broker, message: MessageProxy) -> None:
        self._wait(message)

    def before_nack(self, broker: Broker, message: MessageProxy) -> None:
        if getattr(message, TICKET_ATTRIBUTE, None) is None:
            # rejected without running (an unknown actor): record why before it leaves
            at = now()
            exception = getattr(message, "_exception", None)
            self._final(
                message,
                self._change(
                    message,
                    State.DEAD,
                    at,
                    finished_at=at,
                    error=describe_error(exception),
                    **self._described(broker, message),
                ),
            )
        self._wait(message)

    def _wait(self, message: MessageProxy) -> None:
        ticket = getattr(message, TICKET_ATTRIBUTE, None)
        if ticket is not None and not self.acks_deferred:
            self.writer.wait_durable(ticket)
