"""Typed clients for the payment provider, the warehouse and the carrier.

Every call has an explicit timeout (connect 2 s, read 5 s by default), and every failure is
mapped onto the shop's error hierarchy so an actor's ``throws=`` and ``Retries`` do the right
thing: timeouts, connection errors and 5xx are ``TransientError`` (retry with the *same*
idempotency key), a decline or another 4xx is ``PermanentError`` (never retry).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, ClassVar, Self, TypeVar

import httpx

from jobcore.errors import BusinessOutcome, InvalidInput, JobError, PermanentError, TransientError
from jobcore.limits import ConcurrencyLimit
from shop.integrations import outbound
from shop.payments.provider_models import (
    Charge,
    Fulfilment,
    FulfilmentLine,
    Refund,
    StockLevel,
    Tracking,
    TrackingEvent,
    charge_from_json,
    fulfilment_from_json,
    refund_from_json,
    stock_page_from_json,
    tracking_from_json,
)

__all__ = [
    "CarrierClient",
    "Charge",
    "Fulfilment",
    "FulfilmentLine",
    "PaymentClient",
    "PaymentDeclined",
    "ProviderError",
    "ProviderRejected",
    "ProviderUnavailable",
    "RateLimited",
    "Refund",
    "StockLevel",
    "Tracking",
    "TrackingEvent",
    "WarehouseClient",
    "parse_retry_after",
]
SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
DEFAULT_RETRY_AFTER_S = 1.0
T = TypeVar("T")


class ProviderError(JobError):
    """A call to an external party failed; ``status_code`` and ``code`` say how, if it answered."""

    def __init__(
        self, message: str, *, status_code: int | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code


class PaymentDeclined(ProviderError, BusinessOutcome):
    """The card was declined: ask the customer for another card; retrying cannot help."""


class ProviderRejected(ProviderError, PermanentError):
    """The party refused the request (4xx): fix the request or the data; retrying cannot help."""


class ProviderUnavailable(ProviderError, TransientError):
    """Timeout, connection failure or 5xx: retry later with the same idempotency key."""


class RateLimited(ProviderError, TransientError):
    """429: retry no sooner than ``retry_after_s`` seconds."""

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: float,
        status_code: int | None = 429,
        code: str | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, code=code)
        self.retry_after_s = retry_after_s


def parse_retry_after(value: str | None, now: datetime | None = None) -> float:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date); 1 s if absent or bad."""
    if not value:
        return DEFAULT_RETRY_AFTER_S
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER_S
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _safe_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not SAFE_ID.fullmatch(value):
        raise InvalidInput(f"{what} {value!r} is not a valid identifier")
    return value


def _positive_int(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInput(f"{what} must be a positive integer, got {value!r}")
    return value


class _Client:
    """One ``httpx.Client`` (connection pool) with the timeout applied to every request."""

    party = "provider"
    permanent_by_status: ClassVar[Mapping[int, type[ProviderError]]] = {}

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float = 2.0,
        read_timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        policy: outbound.Policy | None = None,
        limit: ConcurrencyLimit | None = None,
    ) -> None:
        """Timeouts in seconds; ``read_timeout`` also bounds writes and the wait for a pooled
        connection, so no call can block longer than the actor's time limit expects.

        ``policy``: every connection checked by the outbound guard (``shop.integrations.
        outbound``: allow-list, no private address unless listed); redirects are never followed
        (a 3xx is refused as permanent). ``transport`` replaces the network (unit tests).
        ``limit``: every call holds one of its slots (a global limit across all workers)."""
        self.timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self.limit = limit
        options: dict[str, Any] = {"base_url": base_url, "headers": {"User-Agent": "shopjobs/0.1"}}
        if policy is not None and transport is None:
            self._http = outbound.client(policy, self.timeout, **options)
        else:
            self._http = httpx.Client(timeout=self.timeout, transport=transport, **options)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _request(
        self,
        method: str,
        path: str,
        convert: Callable[[dict[str, Any], bool], T],
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> T:
        """Send one request and ``convert(body, replayed)`` its JSON answer."""
        headers = {}
        if idempotency_key is not None:
            if not isinstance(idempotency_key, str) or not idempotency_key.strip():
                raise InvalidInput("an idempotency key is required and must be a non-empty string")
            headers["Idempotency-Key"] = idempotency_key
        where = f"{self.party} {method} {path}"
        try:
            with self.limit.hold() if self.limit else contextlib.nullcontext():
                response = self._http.request(
                    method, path, json=json, params=params, headers=headers, timeout=self.timeout
                )
        except httpx.TimeoutException as exc:
            raise ProviderUnavailable(
                f"{where} timed out ({type(exc).__name__}); retry with the same key"
            ) from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailable(
                f"{where} failed ({type(exc).__name__}); retry later"
            ) from exc
        body = self._decode(where, response)
        try:
            return convert(body, response.headers.get("Idempotent-Replayed") == "true")
        except (KeyError, TypeError, ValueError) as exc:
            # a contract mismatch: transient, so it ends in retries and a dead letter
            raise ProviderUnavailable(
                f"{where} answered an unexpected body ({exc!r})", status_code=response.status_code
            ) from exc

    def _decode(self, where: str, response: httpx.Response) -> dict[str, Any]:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        code = body.get("error") if isinstance(body, dict) else None
        if 200 <= status < 300:
            if not isinstance(body, dict):
                raise ProviderUnavailable(
                    f"{where} answered {status} without a JSON object; retry", status_code=status
                )
            return body
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise RateLimited(
                f"{where} rate limited; retry in {retry_after:g}s",
                retry_after_s=retry_after,
                code=code,
            )
        if status >= 500 or status == 408:
            raise ProviderUnavailable(
                f"{where} answered {status} ({code}); retry later", status_code=status, code=code
            )
        error = self.permanent_by_status.get(status, ProviderRejected)
        raise error(
            f"{where} refused with {status} ({code}); do not retry", status_code=status, code=code
        )


class PaymentClient(_Client):
    """The payment provider: charges (captured now or authorized), capture, void, refunds."""

    party = "payments"
    permanent_by_status: ClassVar[Mapping[int, type[ProviderError]]] = {402: PaymentDeclined}

    def charge(
        self,
        order_id: int,
        amount_cents: int,
        currency: str,
        card_token: str,
        idempotency_key: str,
        *,
        capture: bool = True,
    ) -> Charge:
        """Charge once per key: a retry after a timeout returns the charge already made."""
        body = {
            "order_id": _positive_int(order_id, "order_id"),
            "amount_cents": _positive_int(amount_cents, "amount_cents"),
            "currency": currency.upper(),
            "card_token": card_token,
            "capture": capture,
        }
        return self._request(
            "POST", "/v1/charges", charge_from_json, json=body, idempotency_key=idempotency_key
        )

    def capture(self, charge_id: str) -> Charge:
        return self._request(
            "POST", f"/v1/charges/{_safe_id(charge_id, 'charge id')}/capture", charge_from_json
        )

    def void(self, charge_id: str) -> Charge:
        return self._request(
            "POST", f"/v1/charges/{_safe_id(charge_id, 'charge id')}/void", charge_from_json
        )

    def refund(
        self, charge_id: str, amount_cents: int, reason: str, idempotency_key: str
    ) -> Refund:
        body = {
            "charge_id": _safe_id(charge_id, "charge id"),
            "amount_cents": _positive_int(amount_cents, "amount_cents"),
            "reason": reason,
        }
        return self._request(
            "POST", "/v1/refunds", refund_from_json, json=body, idempotency_key=idempotency_key
        )

    def find_charge(self, idempotency_key: str) -> Charge | None:
        """The charge a request with this key made, if any: the answer to a charge that timed out."""
        found = self._request(
            "GET",
            "/v1/charges",
            lambda body, _replayed: body,
            params={"idempotency_key": idempotency_key},
        )
        data = found.get("data")
        if not isinstance(data, list):
            raise ProviderUnavailable("payments GET /v1/charges answered without a data list")
        return charge_from_json(data[0], False) if data else None

    def get_charge(self, charge_id: str) -> Charge:
        return self._request(
            "GET", f"/v1/charges/{_safe_id(charge_id, 'charge id')}", charge_from_json
        )


class WarehouseClient(_Client):
    """The warehouse: one idempotent fulfilment per order, and paged stock levels."""

    party = "warehouse"

    def send_fulfilment(
        self,
        order_id: int,
        lines: Iterable[FulfilmentLine | Mapping[str, Any]],
        idempotency_key: str,
    ) -> Fulfilment:
        """Ask the warehouse to ship the order once; a retry with the same key gets the same one."""
        wire = [{"sku": line["sku"], "quantity": line["quantity"]} for line in lines]
        body = {"order_id": _positive_int(order_id, "order_id"), "lines": wire}
        return self._request(
            "POST",
            "/v1/fulfilments",
            fulfilment_from_json,
            json=body,
            idempotency_key=idempotency_key,
        )

    def get_fulfilment(self, order_id: int) -> Fulfilment:
        return self._request(
            "GET", f"/v1/fulfilments/{_positive_int(order_id, 'order_id')}", fulfilment_from_json
        )

    def stock_pages(self, page_size: int = 100) -> Iterator[list[StockLevel]]:
        """Yield one page of stock levels at a time, following ``next_page`` to the end."""
        page: int | None = 1
        while page is not None:
            items, next_page = self._request(
                "GET",
                "/v1/stock",
                stock_page_from_json,
                params={"page": page, "page_size": page_size},
            )
            yield items
            # a next_page that does not advance would loop forever: treat it as the end
            page = next_page if isinstance(next_page, int) and next_page > page else None


class CarrierClient(_Client):
    """The carrier: where a parcel is."""

    party = "carrier"

    def tracking(self, tracking_number: str) -> Tracking:
        return self._request(
            "GET",
            f"/v1/tracking/{_safe_id(tracking_number, 'tracking number')}",
            tracking_from_json,
        )
