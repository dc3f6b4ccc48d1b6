"""Structured logs: JSON lines in production, readable lines in a terminal, secrets and PII redacted.

Every line inside a job carries the job's bound context (message_id, actor, attempt, order_id,
user_id), which ``middleware.log_context.LogContext`` enters in ``jobcore.job_context``.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import dramatiq
import structlog
from dramatiq.middleware import Retries
from structlog.typing import Processor

from jobcore import job_context
from jobcore.errors import TransientError
from jobcore.redaction import register_secrets, scrub_text, secrets_of

__all__ = ["configure", "get_logger", "redact_processor", "scrub_text"]

SECRET_FIELD = re.compile(
    r"pass(word)?|secret|token|api[_-]?key|authorization|card|cvv|email|phone", re.IGNORECASE
)


def redact_processor(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if key in ("timestamp", "level", "logger"):
            continue
        if SECRET_FIELD.search(key) and key not in ("event",):
            event[key] = "[redacted]"
        elif isinstance(value, str):
            event[key] = scrub_text(value)
    return event


class SafeMessageArgs(logging.Filter):
    """Dramatiq logs whole messages (``%s`` of a message shows its arguments); log their ids only."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(_is_message(a) for a in record.args):
            record.args = tuple(_message_ref(a) if _is_message(a) else a for a in record.args)
        return True


DRAMATIQ_WORKER_LOGGER = "dramatiq.worker.WorkerThread"
DRAMATIQ_ATTEMPT_FAILED = "Failed to process message %s with unhandled exception."


class AttemptFailureAsWarning(logging.Filter):
    """Dramatiq logs each failed attempt at ERROR, before Retries has decided to retry it.

    A failed attempt is a WARNING (traceback kept); a job that failed for good is logged at ERROR
    once, as a dead letter (``jobcore.dead_letters``), and an expected ``throws=`` error stays at
    INFO. So an ERROR line means a job failed for good.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and record.msg == DRAMATIQ_ATTEMPT_FAILED:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class TransientRetryLine(logging.Filter):
    """A failed attempt of a transient error that will be retried is one line, no traceback.

    ``AttemptFailureAsWarning`` has made the attempt a WARNING with its traceback; for a
    ``TransientError`` (an SMTP 421, a 503) that ``Retries`` is about to retry (same options, same
    count) the traceback says nothing new, twenty lines per retry. Any other attempt keeps it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            record.name == DRAMATIQ_WORKER_LOGGER
            and record.msg == DRAMATIQ_ATTEMPT_FAILED
            and record.exc_info
            and isinstance(record.args, tuple)
            and record.args
            and _is_message(record.args[0])
        ):
            exception = record.exc_info[1]
            if isinstance(exception, TransientError) and _will_retry(record.args[0], exception):
                record.levelno, record.levelname = logging.WARNING, "WARNING"
                record.msg = "Message %s failed with %s: %s; it will be retried."
                record.args = (record.args[0], type(exception).__name__, str(exception))
                record.exc_info, record.exc_text = None, None
        return True


class ClosingClosedConnection(logging.Filter):
    """pika's "close() called on closed connection" is DEBUG, not ERROR.

    On a clean shutdown Dramatiq closes every thread's connection, some already closed by the
    server or the heartbeat; pika logs ERROR and raises, and Dramatiq swallows the exception.
    The caller learns of it from the exception; the line is noise (26 ERRORs per shutdown).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and "called on closed connection" in record.getMessage():
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


class BrokerConnectionLoss(logging.Filter):
    """A lost or refused broker connection is one WARNING line, not six ERRORs and a CRITICAL.

    While RabbitMQ is away, pika logs each failed connection attempt six times at ERROR (its
    connection workflow's chain of reports, the socket's, ``Error in _create_connection()``)
    and Dramatiq's consumer logs CRITICAL before it reconnects by itself: a broker restart of
    22 s under the main job wrote 750 ERROR and 126 CRITICAL lines, and a connection that died
    with the broker made ERROR lines at the next clean shutdown, when it was closed. Every
    caller handles the loss (Dramatiq reconnects its consumers, the relay and the ledger writer
    back off and retry), so one line per loss is kept at WARNING ("Connection workflow failed",
    "Unexpected connection close detected", Dramatiq's "Consumer encountered a connection
    error") and pika's repetitions show at DEBUG only. Alerts come from metrics (consumers per
    queue, relay failures), not from log levels.
    """

    _REPEATS = ("pika.adapters.utils.connection_workflow", "pika.adapters.utils.io_services_utils")
    _KEPT = ("Connection workflow failed", "Unexpected connection close detected")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return True
        name, text = record.name, str(record.msg)
        if name.startswith("dramatiq.worker.ConsumerThread"):
            if text.startswith("Consumer encountered a connection error"):
                record.levelno, record.levelname = logging.WARNING, "WARNING"
            return True
        if not name.startswith("pika.adapters."):
            return True
        if name == "pika.adapters.blocking_connection" and text.startswith(self._KEPT):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            return True
        if (
            name.startswith(self._REPEATS)
            or (name == "pika.adapters.base_connection" and text.startswith("connection_lost"))
            or (name == "pika.adapters.blocking_connection" and "_create_connection" in text)
        ):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


def _will_retry(message: Any, exception: BaseException) -> bool:
    """What ``Retries.after_process_message`` will decide for this failure (False if unsure)."""
    try:
        broker = dramatiq.get_broker()
        actor = broker.get_actor(message.actor_name)
        retries_mw = next(m for m in broker.middleware if isinstance(m, Retries))
    except Exception:  # noqa: BLE001  (no broker, unknown actor: keep the traceback)
        return False
    retries = message.options.get("retries", 0)
    retry_when = actor.options.get("retry_when", retries_mw.retry_when)
    if retry_when is not None:
        return bool(retry_when(retries, exception))
    max_retries = message.options.get(
        "max_retries", actor.options.get("max_retries", retries_mw.max_retries)
    )
    return max_retries is None or retries < max_retries


def _is_message(value: Any) -> bool:
    return hasattr(value, "actor_name") and hasattr(value, "message_id") and hasattr(value, "args")


def _message_ref(message: Any) -> str:
    return f"{message.actor_name}[{message.message_id!r}]"


def configure(fmt: str = "console", level: str = "INFO", *, settings: Any = None) -> None:
    """Route structlog and the standard library (Dramatiq's own loggers) through one pipeline.

    ``settings`` registers its passwords and secrets, so their exact values are masked too.
    """
    if settings is not None:
        register_secrets(secrets_of(settings))
    stamp: list[Processor] = [
        job_context.merge,
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *stamp,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *stamp],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_processor,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(TransientRetryLine())  # first: it reads the message before it is reduced
    handler.addFilter(SafeMessageArgs())
    handler.addFilter(BrokerConnectionLoss())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("pika").setLevel(logging.WARNING)
    worker_log = logging.getLogger(DRAMATIQ_WORKER_LOGGER)
    if not any(isinstance(f, AttemptFailureAsWarning) for f in worker_log.filters):
        worker_log.addFilter(AttemptFailureAsWarning())
    closing = logging.getLogger("pika.adapters.blocking_connection")
    if not any(isinstance(f, ClosingClosedConnection) for f in closing.filters):
        closing.addFilter(ClosingClosedConnection())
    # one INFO line per outbound HTTP request drowns the job lines: third-party request logs
    # show only when the process runs at DEBUG
    quiet = logging.DEBUG if level == "DEBUG" else logging.WARNING
    for name in ("httpx", "httpcore", "urllib3"):
        logging.getLogger(name).setLevel(quiet)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
