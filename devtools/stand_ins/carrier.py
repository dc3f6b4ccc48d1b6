"""Carrier stand-in: tracking lookups, with statuses set by tests through ``/_admin/tracking``.

Any well-formed number the carrier has not heard of is answered as a parcel just picked up
(``in_transit``), so the shop's tracking jobs work without set-up; numbers starting with
``UNKNOWN`` are a 404, as at a real carrier before the first scan. The warehouse stand-in's
numbers are ``TRK`` + the order id zero-padded to 8 digits, so tests can drive them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from devtools.stand_ins import http_base
from devtools.stand_ins.http_base import App, HttpError, Reply, Request

NOT_FOUND_PREFIX = "UNKNOWN"
STATUSES = ("label_created", "in_transit", "out_for_delivery", "delivered", "exception", "returned")
TRACKING_NUMBER = r"[A-Za-z0-9_-]{1,64}"


class CarrierApp(App):
    name = "carrier"

    def __init__(self) -> None:
        super().__init__()
        self.shipments: dict[str, dict[str, Any]] = {}
        self.route("GET", rf"/v1/tracking/(?P<number>{TRACKING_NUMBER})", self._tracking)
        self.route("POST", "/_admin/tracking", self._set_tracking)
        self.route(
            "GET",
            "/_admin/ledger",
            lambda r, m: Reply(200, {"shipments": self._copy(list(self.shipments.values()))}),
        )

    def reset_state(self) -> None:
        self.shipments.clear()

    def _copy(self, value: Any) -> Any:
        with self.lock:
            if isinstance(value, list):
                return [self._copy(v) for v in value]
            return {**value, "events": [dict(e) for e in value["events"]]}

    def _tracking(self, request: Request, match: Any) -> Reply:
        number = match["number"]
        if number.startswith(NOT_FOUND_PREFIX):
            raise HttpError(404, "unknown_tracking_number")
        with self.lock:
            shipment = self.shipments.get(number)
            if shipment is None:
                shipment = self.shipments[number] = {
                    "tracking_number": number,
                    "status": "in_transit",
                    "events": [_event("label_created"), _event("in_transit")],
                }
            return Reply(200, self._copy(shipment))

    def _set_tracking(self, request: Request, match: Any) -> Reply:
        """Append a scan event ``{tracking_number, status, location?}`` and make it current."""
        body = request.json_object()
        number, status = body.get("tracking_number"), body.get("status")
        location = body.get("location")
        if not isinstance(number, str) or not re.fullmatch(TRACKING_NUMBER, number):
            raise HttpError(400, "invalid_request", f"tracking_number must match {TRACKING_NUMBER}")
        if status not in STATUSES:
            raise HttpError(400, "invalid_request", f"status must be one of {list(STATUSES)}")
        if location is not None and not isinstance(location, str):
            raise HttpError(400, "invalid_request", "location must be a string")
        event = _event(status, location)
        with self.lock:
            shipment = self.shipments.setdefault(
                number, {"tracking_number": number, "status": status, "events": []}
            )
            shipment["status"] = status
            shipment["events"].append(event)
            return Reply(200, self._copy(shipment))


def _event(status: str, location: str | None = None) -> dict[str, Any]:
    return {
        "status": status,
        "location": location,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def serve(port: int = 0, host: str = "127.0.0.1") -> None:
    """Run the carrier stand-in in this process until SIGTERM."""
    http_base.serve(CarrierApp(), port, host)


if __name__ == "__main__":
    http_base.main(CarrierApp)
