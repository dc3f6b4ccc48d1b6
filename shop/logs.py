"""Structured logs: JSON lines in production, readable lines in a terminal, secrets and PII redacted.

Every line inside a job carries the job's bound context (message_id, actor, attempt, order_id,
user_id), bound by ``middleware.log_context.LogContext`` through structlog's contextvars.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
CARD = re.compile(r"\b(?:\d[ -]?){13,19}\b")
PHONE = re.compile(r"\+\d[\d \-]{7,}\d")
SECRET_FIELD = re.compile(r"pass(word)?|secret|token|api[_-]?key|authorization|card|cvv|email|phone", re.I)
SECRET_IN_TEXT = re.compile(r"(?i)(password|passwd|secret|token|api[_-]?key)=([^\s&,;]+)")


def scrub_text(text: str) -> str:
    """Mask e-mail addresses, card-like digit runs, phone numbers and key=value secrets."""
    text = SECRET_IN_TEXT.sub(r"\1=[redacted]", text)
    text = EMAIL.sub("[email]", text)
    text = CARD.sub("[number]", text)
    return PHONE.sub("[phone]", text)


def redact_processor(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for key, value in list(event.items()):
        if key in ("timestamp", "level", "logger"):
            continue
        if SECRET_FIELD.search(key) and key not in ("event",):
            event[key] = "[redacted]"
        elif isinstance(value, str):
            event[key] = scrub_text(value)
    return event


def configure(fmt: str = "console", level: str = "INFO") -> None:
    """Route structlog and the standard library (Dramatiq's own loggers) through one pipeline."""
    stamp = [
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
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("pika").setLevel(logging.WARNING)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
