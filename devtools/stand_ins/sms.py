"""SMS gateway stand-in: ``POST /v1/messages`` with an idempotency key, and what it delivered.

The shape of a typical HTTP SMS API (Bearer key, JSON ``{"to", "body"}``, ``201 {"id"}``). The
same Idempotency-Key replays the first answer, so a retried send after a lost reply never
texts twice. Faults: the HTTP stand-ins' ``timeout``, ``http_500``, ``http_503``,
``rate_limit``, ``slow``, plus ``invalid_number`` (422, permanent). ``/_admin/messages`` lists
what was delivered; the log never shows a number or a body.
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
from devtools.stand_ins.process import StandIn, launch

PHONE = re.compile(r"\+[1-9][0-9]{6,14}")
MAX_BODY = 640


class SmsApp(App):
    name = "sms"
    extra_fault_modes = frozenset({"invalid_number"})

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, Any]] = []
        self.idempotency = IdempotencyStore()
        self.route("POST", "/v1/messages", self._send)
        self.route("GET", "/_admin/messages", self._list)

    def reset_state(self) -> None:
        self.messages.clear()
        self.idempotency.clear()

    def fault_applies(self, spec: FaultSpec, request: Request) -> bool:
        return request.method == "POST" if spec.mode == "invalid_number" else True

    def _send(self, request: Request, match: Any) -> Reply:
        if not (request.headers.get("Authorization") or "").startswith("Bearer "):
            raise HttpError(401, "unauthorized", "send Authorization: Bearer <api key>")
        key = require_key(request)
        body = request.json_object()
        to, text = body.get("to"), body.get("body")
        if not isinstance(to, str) or not PHONE.fullmatch(to):
            raise HttpError(422, "invalid_number", "to must be an E.164 number")
        if request.fault is not None and request.fault.mode == "invalid_number":
            raise HttpError(422, "invalid_number", "the number cannot receive messages")
        if not isinstance(text, str) or not text or len(text) > MAX_BODY:
            raise HttpError(422, "invalid_body", f"body must be 1-{MAX_BODY} characters")
        with self.lock:
            replay = self.idempotency.lookup("messages", key, body)
            if replay is not None:
                return replay
            message = {
                "id": f"sms_{uuid.uuid4().hex[:20]}",
                "to": to,
                "body": text,
                "idempotency_key": key,
                "created": time.time(),
            }
            self.messages.append(message)
            return self.idempotency.remember(
                "messages", key, body, Reply(201, {"id": message["id"], "status": "queued"})
            )

    def _list(self, request: Request, match: Any) -> Reply:
        with self.lock:
            return Reply(200, {"messages": [dict(m) for m in self.messages]})


class SmsStandIn(StandIn):
    def messages(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.admin("GET", "/_admin/messages")["messages"]
        return result


def start_sms_stand_in(port: int = 0, log_path: str | None = None) -> SmsStandIn:
    """Start the SMS gateway stand-in as its own process."""
    return launch(SmsStandIn, "sms", port=port, log_path=log_path)


if __name__ == "__main__":
    http_base.main(SmsApp)
