"""The process's clients for the external parties, made on first use after fork."""

from __future__ import annotations

import os
import threading
from typing import Any

from jobcore.limits import ConcurrencyLimit
from shop.integrations.outbound import Policy
from shop.settings import Settings, current, install

_lock = threading.Lock()
_clients: dict[tuple[int, str], Any] = {}


def configure(settings: Settings) -> None:
    """Install ``settings`` for the process and drop clients built from earlier ones."""
    with _lock:
        install(settings)
        _clients.clear()


def _client(kind: str, factory: Any) -> Any:
    key = (os.getpid(), kind)
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = factory()
    return client


def _guarded(factory: Any, url: str, s: Settings, limit: ConcurrencyLimit | None = None) -> Any:
    """``factory``'s client for ``url``, every connection checked by the outbound guard, every
    call holding a slot of ``limit`` when given."""
    policy = Policy.for_urls(s.outbound_allowed_hosts, url)
    return factory(url, read_timeout=s.http_timeout_s, policy=policy, limit=limit)


def payments() -> Any:
    from shop.integrations.http_clients import PaymentClient

    s = current()
    limit = concurrency_limit("payments", s.payment_concurrency, s)
    return _client("payments", lambda: _guarded(PaymentClient, s.payment_url, s, limit))


def warehouse() -> Any:
    from shop.integrations.http_clients import WarehouseClient

    s = current()
    limit = concurrency_limit("warehouse", s.warehouse_concurrency, s)
    return _client("warehouse", lambda: _guarded(WarehouseClient, s.warehouse_url, s, limit))


def carrier() -> Any:
    from shop.integrations.http_clients import CarrierClient

    s = current()
    return _client("carrier", lambda: _guarded(CarrierClient, s.carrier_url, s))


def concurrency_limit(key: str, limit: int, s: Settings) -> ConcurrencyLimit:
    """The global limit on calls to one party, from the settings."""
    return ConcurrencyLimit(key, limit, lease_ms=s.limit_lease_s * 1000, wait_ms=s.limit_wait_ms)
