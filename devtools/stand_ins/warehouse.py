"""Warehouse stand-in: idempotent fulfilment requests and paged stock levels.

One fulfilment per order (a second key for the same order gets 409), so a duplicated message
can never ship twice. Stock is counted only for SKUs set through ``/_admin/stock``: those are
decremented by fulfilments and refuse to go negative (422), which lets tests drive the
"out of stock at the warehouse" compensation path; other SKUs are accepted without counting.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from typing import Any

from devtools.stand_ins import http_base
from devtools.stand_ins.http_base import App, HttpError, Reply, Request
from devtools.stand_ins.idempotency import IdempotencyStore, require_key

SKU = re.compile(r"[A-Za-z0-9._-]{1,64}")
MAX_LINES = 100
MAX_QUANTITY = 10_000
MAX_PAGE_SIZE = 500


def tracking_number_for(order_id: int) -> str:
    """Derived from the order, so a test can drive the carrier stand-in for a known order."""
    return f"TRK{order_id:08d}"


def _lines(body: dict[str, Any]) -> list[dict[str, Any]]:
    lines = body.get("lines")
    if not isinstance(lines, list) or not 1 <= len(lines) <= MAX_LINES:
        raise HttpError(400, "invalid_request", f"lines must be a list of 1 to {MAX_LINES} lines")
    clean = []
    for line in lines:
        if not isinstance(line, dict) or set(line) != {"sku", "quantity"}:
            raise HttpError(400, "invalid_request", "each line is {sku, quantity}")
        sku, quantity = line["sku"], line["quantity"]
        if not isinstance(sku, str) or not SKU.fullmatch(sku):
            raise HttpError(400, "invalid_request", "sku must be 1-64 of [A-Za-z0-9._-]")
        if (
            isinstance(quantity, bool)
            or not isinstance(quantity, int)
            or not 0 < quantity <= MAX_QUANTITY
        ):
            raise HttpError(
                400, "invalid_request", f"quantity must be an integer in [1, {MAX_QUANTITY}]"
            )
        clean.append({"sku": sku, "quantity": quantity})
    return clean


def _query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HttpError(400, "invalid_request", f"{name} must be an integer") from None
    if not low <= value <= high:
        raise HttpError(400, "invalid_request", f"{name} must be in [{low}, {high}]")
    return value


class WarehouseApp(App):
    name = "warehouse"
    # garbage: the stock endpoint answers 200 with a body that breaks the contract
    extra_fault_modes = frozenset({"garbage"})

    def __init__(self) -> None:
        super().__init__()
        self.fulfilments: dict[int, dict[str, Any]] = {}
        self.stock: dict[str, int] = {}
        self.idempotency = IdempotencyStore()
        self.route("POST", "/v1/fulfilments", self._create_fulfilment)
        self.route("GET", r"/v1/fulfilments/(?P<order_id>\d{1,18})", self._get_fulfilment)
        self.route("GET", "/v1/stock", self._stock_page)
        self.route("GET", "/_admin/stock", lambda r, m: Reply(200, self._stock_copy()))
        self.route("POST", "/_admin/stock", self._set_stock)
        self.route("GET", "/_admin/ledger", self._ledger)

    def reset_state(self) -> None:
        self.fulfilments.clear()
        self.stock.clear()
        self.idempotency.clear()

    def _stock_copy(self) -> dict[str, int]:
        with self.lock:
            return dict(self.stock)

    def _create_fulfilment(self, request: Request, match: Any) -> Reply:
        key = require_key(request)
        body = request.json_object()
        order_id = body.get("order_id")
        if isinstance(order_id, bool) or not isinstance(order_id, int) or order_id < 1:
            raise HttpError(400, "invalid_request", "order_id must be a positive integer")
        lines = _lines(body)
        with self.lock:
            replay = self.idempotency.lookup("fulfilments", key, body)
            if replay is not None:
                return replay
            existing = self.fulfilments.get(order_id)
            if existing is not None:
                raise HttpError(
                    409,
                    "fulfilment_exists",
                    "this order already has a fulfilment",
                    fulfilment_id=existing["id"],
                )
            wanted = Counter[str]()
            for line in lines:
                wanted[line["sku"]] += line["quantity"]
            for sku, quantity in sorted(wanted.items()):
                on_hand = self.stock.get(sku)
                if on_hand is not None and on_hand < quantity:
                    raise HttpError(
                        422,
                        "insufficient_stock",
                        f"{sku} has {on_hand}, {quantity} asked",
                        sku=sku,
                        on_hand=on_hand,
                        requested=quantity,
                    )
            for sku, quantity in wanted.items():
                if sku in self.stock:
                    self.stock[sku] -= quantity
            fulfilment = {
                "id": f"ful_{uuid.uuid4().hex[:20]}",
                "order_id": order_id,
                "lines": lines,
                "status": "accepted",
                "tracking_number": tracking_number_for(order_id),
                "created": int(time.time()),
            }
            self.fulfilments[order_id] = fulfilment
            reply = Reply(201, fulfilment)
            return self.idempotency.remember("fulfilments", key, body, reply)

    def _get_fulfilment(self, request: Request, match: Any) -> Reply:
        with self.lock:
            fulfilment = self.fulfilments.get(int(match["order_id"]))
            if fulfilment is None:
                raise HttpError(404, "fulfilment_not_found")
            return Reply(200, fulfilment)

    def _stock_page(self, request: Request, match: Any) -> Reply:
        if request.fault is not None and request.fault.mode == "garbage":
            return Reply(200, {"items": [{"sku": None}], "page": "?"})
        page = _query_int(request, "page", 1, 1, 10**9)
        page_size = _query_int(request, "page_size", 100, 1, MAX_PAGE_SIZE)
        with self.lock:
            skus = sorted(self.stock)
            start = (page - 1) * page_size
            items = [
                {"sku": sku, "on_hand": self.stock[sku]} for sku in skus[start : start + page_size]
            ]
            more = start + page_size < len(skus)
            return Reply(
                200,
                {
                    "items": items,
                    "page": page,
                    "page_size": page_size,
                    "total": len(skus),
                    "next_page": page + 1 if more else None,
                },
            )

    def _set_stock(self, request: Request, match: Any) -> Reply:
        """Merge ``{sku: on_hand}`` into the stock table (reset first to replace it)."""
        body = request.json_object()
        for sku, on_hand in body.items():
            if not SKU.fullmatch(sku):
                raise HttpError(400, "invalid_request", "sku must be 1-64 of [A-Za-z0-9._-]")
            if isinstance(on_hand, bool) or not isinstance(on_hand, int) or on_hand < 0:
                raise HttpError(400, "invalid_request", "on_hand must be a non-negative integer")
        with self.lock:
            self.stock.update(body)
            return Reply(200, {"skus": len(self.stock)})

    def _ledger(self, request: Request, match: Any) -> Reply:
        with self.lock:
            return Reply(
                200, {"fulfilments": list(self.fulfilments.values()), "stock": dict(self.stock)}
            )


def serve(port: int = 0, host: str = "127.0.0.1") -> None:
    """Run the warehouse stand-in in this process until SIGTERM."""
    http_base.serve(WarehouseApp(), port, host)


if __name__ == "__main__":
    http_base.main(WarehouseApp)
