"""What the external parties answer, as typed dicts the HTTP clients return.

TypedDicts rather than classes: mypy checks ``charge["status"]``, and at run time they are plain
JSON-ready dicts, so a result can go into a job's return value or a log field as it is. Each
``*_from_json`` reads exactly the fields the shop relies on; a missing one is a KeyError that
``http_clients`` turns into ``ProviderUnavailable``.
"""

from __future__ import annotations

from typing import Any, TypedDict


class Charge(TypedDict):
    id: str
    order_id: int
    amount_cents: int
    currency: str
    status: str  # "authorized" | "captured" | "voided"
    captured_cents: int
    refunded_cents: int
    replayed: bool  # answered from the provider's idempotency store (a retry)


class Refund(TypedDict):
    id: str
    charge_id: str
    amount_cents: int
    reason: str
    status: str
    replayed: bool


class FulfilmentLine(TypedDict):
    sku: str
    quantity: int


class Fulfilment(TypedDict):
    id: str
    order_id: int
    lines: list[FulfilmentLine]
    status: str
    tracking_number: str
    replayed: bool


class StockLevel(TypedDict):
    sku: str
    on_hand: int


class TrackingEvent(TypedDict):
    status: str
    at: str
    location: str | None


class Tracking(TypedDict):
    tracking_number: str
    status: str
    events: list[TrackingEvent]


def charge_from_json(data: dict[str, Any], replayed: bool = False) -> Charge:
    return Charge(
        id=data["id"],
        order_id=data["order_id"],
        amount_cents=data["amount_cents"],
        currency=data["currency"],
        status=data["status"],
        captured_cents=data["captured_cents"],
        refunded_cents=data["refunded_cents"],
        replayed=replayed,
    )


def refund_from_json(data: dict[str, Any], replayed: bool = False) -> Refund:
    return Refund(
        id=data["id"],
        charge_id=data["charge_id"],
        amount_cents=data["amount_cents"],
        reason=data["reason"],
        status=data["status"],
        replayed=replayed,
    )


def stock_page_from_json(
    data: dict[str, Any], replayed: bool = False
) -> tuple[list[StockLevel], Any]:
    items = [StockLevel(sku=item["sku"], on_hand=item["on_hand"]) for item in data["items"]]
    return items, data.get("next_page")


def fulfilment_from_json(data: dict[str, Any], replayed: bool = False) -> Fulfilment:
    lines = [FulfilmentLine(sku=line["sku"], quantity=line["quantity"]) for line in data["lines"]]
    return Fulfilment(
        id=data["id"],
        order_id=data["order_id"],
        lines=lines,
        status=data["status"],
        tracking_number=data["tracking_number"],
        replayed=replayed,
    )


def tracking_from_json(data: dict[str, Any], replayed: bool = False) -> Tracking:
    events = [
        TrackingEvent(status=e["status"], at=e["at"], location=e.get("location"))
        for e in data["events"]
    ]
    return Tracking(tracking_number=data["tracking_number"], status=data["status"], events=events)
