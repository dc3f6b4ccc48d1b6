"""Actors that return values, on the real stack: what the ledger keeps of a job's result."""

from __future__ import annotations

from typing import Any

import dramatiq

import broker  # noqa: F401  (the project's broker and middleware stack)

QUEUE = "tests"


@dramatiq.actor(actor_name="tests.order_summary", queue_name=QUEUE, max_retries=0)
def order_summary(order_id: int) -> dict[str, Any]:
    """A small JSON value, as a thin actor returns."""
    return {"order_id": order_id, "lines": 3, "total_cents": 4599, "status": "paid"}


@dramatiq.actor(actor_name="tests.big_export", queue_name=QUEUE, max_retries=0)
def big_export(rows: int) -> list[dict[str, Any]]:
    """A value far over the ledger's cap."""
    return [
        {"row": n, "sku": f"SKU-{n:06d}", "name": "a product with a long name"} for n in range(rows)
    ]


@dramatiq.actor(actor_name="tests.issue_token", queue_name=QUEUE, max_retries=0)
def issue_token(user_id: int, token: str, email: str) -> dict[str, Any]:
    """Returns secrets it should not: under a secret-looking key, and inside free text."""
    return {"user_id": user_id, "api_token": token, "note": f"sent to {email} with {token}"}


@dramatiq.actor(actor_name="tests.refuses", queue_name=QUEUE, max_retries=0)
def refuses(order_id: int) -> None:
    raise ValueError(f"order {order_id} cannot be exported")
