"""Price-source stand-in (exchange rates): one process is one source; run several for fallback.

``GET /v1/rates?base=EUR&symbols=USD`` → ``{"base", "rates": {"USD": "1.0850"}, "as_of"}``.
Fault modes beyond the usual (``http_500``/``http_503``, ``timeout``, ``slow``): ``garbage``
(an HTML page with status 200) and ``stale`` (a well-formed answer two days old).
``POST /_admin/rates {"EUR_USD": "1.0900"}`` sets a rate; ``/_admin/ledger`` counts requests.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from typing import Any

from devtools.stand_ins import http_base
from devtools.stand_ins.http_base import App, HttpError, Reply, Request

PAIR = re.compile(r"^[A-Z]{3}_[A-Z]{3}$")
DEFAULT_RATES = {"EUR_USD": "1.0850", "EUR_GBP": "0.8560", "EUR_CHF": "0.9410"}


class PricesApp(App):
    name = "prices"
    extra_fault_modes = frozenset({"garbage", "stale"})

    def __init__(self) -> None:
        super().__init__()
        self.rates = dict(DEFAULT_RATES)
        self.served = 0
        self.route("GET", "/v1/rates", self._rates)
        self.route("POST", "/_admin/rates", self._set_rates)
        self.route(
            "GET",
            "/_admin/ledger",
            lambda r, m: Reply(200, {"served": self.served, "rates": self.rates}),
        )

    def reset_state(self) -> None:
        self.rates = dict(DEFAULT_RATES)
        self.served = 0

    def _rates(self, request: Request, match: Any) -> Reply:
        base, symbols = request.query.get("base", ""), request.query.get("symbols", "")
        with self.lock:
            self.served += 1
            wanted = {s: self.rates.get(f"{base}_{s}") for s in symbols.split(",") if s}
        if not wanted or None in wanted.values():
            raise HttpError(404, "unknown_pair", f"no rate for {base}/{symbols}")
        mode = request.fault.mode if request.fault else None
        if mode == "garbage":
            return Reply(
                200,
                b"<html><h1>Service temporarily moved</h1></html>",
                {"Content-Type": "text/html"},
            )
        as_of = dt.datetime.now(dt.UTC) - (
            dt.timedelta(days=2) if mode == "stale" else dt.timedelta()
        )
        return Reply(200, {"base": base, "rates": wanted, "as_of": as_of.isoformat()})

    def _set_rates(self, request: Request, match: Any) -> Reply:
        body = request.json_object()
        for pair, value in body.items():
            try:
                ok = PAIR.match(pair) and decimal.Decimal(str(value)) > 0
            except decimal.InvalidOperation:
                ok = False
            if not ok:
                raise HttpError(
                    400, "invalid_request", 'rates are {"EUR_USD": "1.08"} with positive values'
                )
        with self.lock:
            self.rates.update({k: str(v) for k, v in body.items()})
            return Reply(200, {"rates": self.rates})


if __name__ == "__main__":
    http_base.main(PricesApp)
