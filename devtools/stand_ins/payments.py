"""Payment provider stand-in: idempotent charges, capture/void, bounded refunds, signed webhooks.

It keeps the promises the shop relies on for exactly-once payment effects: an Idempotency-Key
never charges twice, a refund never exceeds what was captured, and ``/_admin/ledger`` shows
every charge and refund so a test can count captures per order.

Webhook events: ``charge.succeeded`` (data: the charge), ``charge.captured``, ``charge.voided``,
``charge.refunded`` (the charge plus ``refund``) and ``charge.failed`` (order_id, amount_cents,
currency, reason), each ``{"id", "type", "created", "data"}`` signed by ``webhook_signing``.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from devtools.stand_ins import http_base
from devtools.stand_ins.faults import FaultSpec
from devtools.stand_ins.http_base import App, HttpError, Reply, Request
from devtools.stand_ins.idempotency import IdempotencyStore, require_key
from devtools.stand_ins.webhook_sender import WebhookSender

DECLINE_TOKEN = "tok_decline"
MAX_AMOUNT_CENTS = 99_999_999
CHARGE_ID = r"(?P<charge_id>ch_[A-Za-z0-9]+)"


def _int_field(body: dict[str, Any], name: str, low: int, high: int) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise HttpError(400, "invalid_request", f"{name} must be an integer in [{low}, {high}]")
    return value


def _str_field(body: dict[str, Any], name: str, pattern: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not re.fullmatch(pattern, value):
        raise HttpError(400, "invalid_request", f"{name} must match {pattern}")
    return value


def _declined() -> Reply:
    return Reply(
        402, {"error": "card_declined", "detail": "the card was declined; ask for another"}
    )


class PaymentsApp(App):
    name = "payments"
    extra_fault_modes = frozenset({"decline", "timeout_after_charge"})

    def __init__(self) -> None:
        super().__init__()
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.charge_by_key: dict[str, str] = {}
        self.idempotency = IdempotencyStore()
        self.webhooks = WebhookSender(self.stopping)
        self.route("POST", "/v1/charges", self._create_charge)
        self.route("GET", "/v1/charges", self._find_charges)
        self.route("GET", f"/v1/charges/{CHARGE_ID}", self._get_charge)
        self.route("POST", f"/v1/charges/{CHARGE_ID}/capture", self._capture)
        self.route("POST", f"/v1/charges/{CHARGE_ID}/void", self._void)
        self.route("POST", "/v1/refunds", self._create_refund)
        self.route("GET", "/_admin/ledger", self._ledger)
        self.route("GET", "/_admin/webhooks", lambda r, m: Reply(200, self.webhooks.snapshot()))
        self.route("POST", "/_admin/webhooks", self._configure_webhooks)

    def reset_state(self) -> None:
        self.charges.clear()
        self.refunds.clear()
        self.charge_by_key.clear()
        self.idempotency.clear()
        self.webhooks.reset()

    def fault_applies(self, spec: FaultSpec, request: Request) -> bool:
        if spec.mode == "decline":
            return request.method == "POST" and request.path == "/v1/charges"
        if spec.mode == "timeout_after_charge":
            return request.method == "POST"  # only calls with an effect to lose the answer of
        return True

    def _charge(self, match: Any) -> dict[str, Any]:
        charge = self.charges.get(match["charge_id"])
        if charge is None:
            raise HttpError(404, "charge_not_found")
        return charge

    def _create_charge(self, request: Request, match: Any) -> Reply:
        key = require_key(request)
        body = request.json_object()
        order_id = _int_field(body, "order_id", 1, 2**63 - 1)
        amount = _int_field(body, "amount_cents", 1, MAX_AMOUNT_CENTS)
        currency = _str_field(body, "currency", r"[A-Za-z]{3}").upper()
        token = _str_field(body, "card_token", r"[A-Za-z0-9_]{1,128}")
        capture = body.get("capture", True)
        if not isinstance(capture, bool):
            raise HttpError(400, "invalid_request", "capture must be true or false")
        with self.lock:
            replay = self.idempotency.lookup("charges", key, body)
            if replay is not None:
                return replay
            if token == DECLINE_TOKEN or (request.fault and request.fault.mode == "decline"):
                # a real provider replays a decline for the same key too
                self.webhooks.emit(
                    "charge.failed",
                    {
                        "order_id": order_id,
                        "amount_cents": amount,
                        "currency": currency,
                        "reason": "card_declined",
                    },
                )
                return self.idempotency.remember("charges", key, body, _declined())
            charge: dict[str, Any] = {
                "id": f"ch_{uuid.uuid4().hex[:20]}",
                "order_id": order_id,
                "amount_cents": amount,
                "currency": currency,
                "status": "captured" if capture else "authorized",
                "captured_cents": amount if capture else 0,
                "refunded_cents": 0,
                "created": int(time.time()),
            }
            self.charges[charge["id"]] = charge
            self.charge_by_key[key] = charge["id"]
            self.webhooks.emit("charge.succeeded", dict(charge))
            return self.idempotency.remember("charges", key, body, Reply(201, dict(charge)))

    def _find_charges(self, request: Request, match: Any) -> Reply:
        """Charges made with one idempotency key: how a client learns whether a request that
        timed out took effect (``GET /v1/charges?idempotency_key=...``)."""
        key = request.query.get("idempotency_key", "")
        if not key:
            raise HttpError(400, "invalid_request", "give idempotency_key")
        with self.lock:
            charge_id = self.charge_by_key.get(key)
            found = [dict(self.charges[charge_id])] if charge_id in self.charges else []
        return Reply(200, {"data": found})

    def _get_charge(self, request: Request, match: Any) -> Reply:
        with self.lock:
            return Reply(200, dict(self._charge(match)))

    def _capture(self, request: Request, match: Any) -> Reply:
        """Capturing twice answers the captured charge: a retried capture is harmless."""
        with self.lock:
            charge = self._charge(match)
            if charge["status"] == "voided":
                raise HttpError(409, "charge_voided", "a voided charge cannot be captured")
            if charge["status"] == "authorized":
                charge.update(status="captured", captured_cents=charge["amount_cents"])
                self.webhooks.emit("charge.captured", dict(charge))
            return Reply(200, dict(charge))

    def _void(self, request: Request, match: Any) -> Reply:
        """Only an authorization can be voided; captured money goes back by refund."""
        with self.lock:
            charge = self._charge(match)
            if charge["status"] == "captured":
                raise HttpError(409, "charge_already_captured", "refund a captured charge instead")
            if charge["status"] == "authorized":
                charge["status"] = "voided"
                self.webhooks.emit("charge.voided", dict(charge))
            return Reply(200, dict(charge))

    def _create_refund(self, request: Request, match: Any) -> Reply:
        key = require_key(request)
        body = request.json_object()
        charge_id = _str_field(body, "charge_id", r"ch_[A-Za-z0-9]+")
        amount = _int_field(body, "amount_cents", 1, MAX_AMOUNT_CENTS)
        reason = _str_field(body, "reason", r"[\w .,:;'()/-]{1,200}")
        with self.lock:
            replay = self.idempotency.lookup("refunds", key, body)
            if replay is not None:
                return replay
            charge = self.charges.get(charge_id)
            if charge is None:
                raise HttpError(404, "charge_not_found")
            if charge["status"] != "captured":
                raise HttpError(409, "charge_not_captured", "only captured charges can be refunded")
            refundable = charge["captured_cents"] - charge["refunded_cents"]
            if amount > refundable:
                raise HttpError(
                    422,
                    "refund_exceeds_captured",
                    f"at most {refundable} can still be refunded",
                    refundable_cents=refundable,
                )
            refund: dict[str, Any] = {
                "id": f"re_{uuid.uuid4().hex[:20]}",
                "charge_id": charge_id,
                "amount_cents": amount,
                "reason": reason,
                "status": "succeeded",
                "created": int(time.time()),
            }
            self.refunds[refund["id"]] = refund
            charge["refunded_cents"] += amount
            self.webhooks.emit("charge.refunded", {**charge, "refund": dict(refund)})
            return self.idempotency.remember("refunds", key, body, Reply(201, dict(refund)))

    def _ledger(self, request: Request, match: Any) -> Reply:
        with self.lock:
            return Reply(
                200,
                {
                    "charges": [dict(c) for c in self.charges.values()],
                    "refunds": [dict(r) for r in self.refunds.values()],
                },
            )

    def _configure_webhooks(self, request: Request, match: Any) -> Reply:
        body = request.json_object()
        url, secret = body.get("url"), body.get("secret")
        if url is not None and not (
            isinstance(url, str) and url.startswith(("http://", "https://"))
        ):
            raise HttpError(400, "invalid_request", "url must be an http(s) URL or null")
        if url is not None and not (isinstance(secret, str) and secret):
            raise HttpError(400, "invalid_request", "a non-empty secret is required with a url")
        return Reply(200, self.webhooks.configure(url, secret))


def serve(port: int = 0, host: str = "127.0.0.1") -> None:
    """Run the payment stand-in in this process until SIGTERM."""
    http_base.serve(PaymentsApp(), port, host)


if __name__ == "__main__":
    http_base.main(PaymentsApp)
