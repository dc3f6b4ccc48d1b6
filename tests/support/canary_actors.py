"""Actors that mishandle secrets on purpose (log them, quote them in errors), for the redaction tests."""

from __future__ import annotations

import logging
import os

import dramatiq
import structlog

import broker  # noqa: F401  (the project's broker and middleware stack)

QUEUE = "tests"
logger = logging.getLogger("tests.canary")


@dramatiq.actor(
    actor_name="tests.canary_signup",
    queue_name=QUEUE,
    max_retries=2,
    min_backoff=100,
    max_backoff=200,
)
def canary_signup(
    user_id: int,
    order_id: int,
    email: str,
    password: str,
    card_number: str,
    note: str,
    marker_path: str,
) -> None:
    """Fails on its first attempt with an error that quotes everything it was given, then succeeds."""
    logger.info("signing up user %r (%s, card %s, note %s)", user_id, email, card_number, note)
    structlog.get_logger("tests.canary").info(
        "sign-up details", email=email, password=password, hint=note
    )
    if not os.path.exists(marker_path):
        with open(marker_path, "w") as fh:
            fh.write("first attempt")
        raise RuntimeError(
            f"provider refused {email} with card {card_number}, password={password}, {note}"
        )


@dramatiq.actor(actor_name="tests.canary_smtp", queue_name=QUEUE, max_retries=0)
def canary_smtp(user_id: int) -> None:
    """Fails for good quoting the configured SMTP password, as some client libraries do."""
    from shop.settings import Settings

    settings = Settings.from_env()
    logger.warning("smtp login as %s with %s", settings.smtp_user, settings.smtp_password)
    raise ConnectionError(
        f"535 authentication failed for {settings.smtp_user} / {settings.smtp_password}"
    )
