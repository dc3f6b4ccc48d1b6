"""The stand-ins as real processes on 127.0.0.1, driven through the shop's HTTP clients.

These need no RabbitMQ or PostgreSQL: each module starts its own stand-in processes once and
resets them before every test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import pytest

from devtools.stand_ins.process import StandIn, StandInError, start_stand_in
from shop.integrations.http_clients import (
    CarrierClient,
    PaymentClient,
    PaymentDeclined,
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
    WarehouseClient,
)
from shop.payments.webhook_signing import HEADER, SignatureError, verify
from tests.support.waiting import wait_until

CARD = "tok_visa"


@pytest.fixture(scope="module")
def payments_process() -> Iterator[StandIn]:
    with start_stand_in("payments") as stand_in:
        yield stand_in


@pytest.fixture(scope="module")
def warehouse_process() -> Iterator[StandIn]:
    with start_stand_in("warehouse") as stand_in:
        yield stand_in


@pytest.fixture(scope="module")
def carrier_process() -> Iterator[StandIn]:
    with start_stand_in("carrier") as stand_in:
        yield stand_in


@pytest.fixture()
def payments(payments_process: StandIn) -> StandIn:
    payments_process.reset()
    return payments_process


@pytest.fixture()
def pay(payments: StandIn) -> Iterator[PaymentClient]:
    with PaymentClient(payments.url) as client:
        yield client


@pytest.fixture()
def warehouse(warehouse_process: StandIn) -> Iterator[tuple[StandIn, WarehouseClient]]:
    warehouse_process.reset()
    with WarehouseClient(warehouse_process.url) as client:
        yield warehouse_process, client


@pytest.fixture()
def carrier(carrier_process: StandIn) -> Iterator[tuple[StandIn, CarrierClient]]:
    carrier_process.reset()
    with CarrierClient(carrier_process.url) as client:
        yield carrier_process, client


def _charges(stand_in: StandIn) -> list[dict[str, Any]]:
    return stand_in.ledger()["charges"]


# payments: idempotency, declines, faults -------------------------------------------------------


def test_a_charge_retried_with_the_same_key_charges_once(payments, pay):
    first = pay.charge(1, 1999, "eur", CARD, "order-1")
    again = pay.charge(1, 1999, "eur", CARD, "order-1")
    assert (
        first["id"] == again["id"] and first["status"] == "captured" and first["currency"] == "EUR"
    )
    assert (first["replayed"], again["replayed"]) == (False, True)
    assert [c["id"] for c in _charges(payments)] == [first["id"]]


def test_the_same_key_with_a_different_body_is_refused_and_charges_nothing_more(payments, pay):
    pay.charge(2, 500, "EUR", CARD, "order-2")
    with pytest.raises(ProviderRejected) as info:
        pay.charge(2, 501, "EUR", CARD, "order-2")
    assert (info.value.status_code, info.value.code) == (409, "idempotency_key_reused")
    assert len(_charges(payments)) == 1


def test_a_declined_card_is_a_permanent_error_and_charges_nothing(payments, pay):
    for _ in range(2):  # the retry with the same key gets the same decline
        with pytest.raises(PaymentDeclined) as info:
            pay.charge(3, 700, "EUR", "tok_decline", "order-3")
    assert info.value.status_code == 402 and info.value.code == "card_declined"
    assert _charges(payments) == []


def test_an_injected_decline_hits_new_charges_only(payments, pay):
    charge = pay.charge(4, 100, "EUR", CARD, "order-4")
    payments.set_faults(mode="decline")
    with pytest.raises(PaymentDeclined):
        pay.charge(5, 100, "EUR", CARD, "order-5")
    assert pay.get_charge(charge["id"])["id"] == charge["id"]
    assert payments.faults()["injected"] == 1


@pytest.mark.parametrize("mode, status", [("http_500", 500), ("http_503", 503)])
def test_a_5xx_is_provider_unavailable_and_the_retry_succeeds(payments, pay, mode, status):
    # Given every other charge request fails, starting with the first
    payments.set_faults(mode=mode, rate=0.5)
    with pytest.raises(ProviderUnavailable) as info:
        pay.charge(6, 1000, "EUR", CARD, "order-6")
    assert info.value.status_code == status
    # When the job retries with the same key, Then it is charged exactly once
    assert pay.charge(6, 1000, "EUR", CARD, "order-6")["status"] == "captured"
    assert len(_charges(payments)) == 1


def test_a_429_is_rate_limited_with_the_retry_after_it_asked_for(payments, pay):
    payments.set_faults(mode="rate_limit", retry_after_s=7)
    with pytest.raises(RateLimited) as info:
        pay.charge(7, 1000, "EUR", CARD, "order-7")
    assert info.value.retry_after_s == 7 and info.value.status_code == 429
    assert _charges(payments) == []


def test_a_held_request_is_provider_unavailable_after_the_client_read_timeout(payments):
    payments.set_faults(mode="timeout")
    started = time.monotonic()
    with (
        PaymentClient(payments.url, read_timeout=0.3) as client,
        pytest.raises(ProviderUnavailable),
    ):
        client.charge(8, 1000, "EUR", CARD, "order-8")
    assert time.monotonic() - started < 3
    assert _charges(payments) == []


def test_a_timeout_after_charge_leaves_one_charge_that_the_retry_returns(payments):
    # Given the provider charges, then loses its answer, for the first request only
    payments.set_faults(mode="timeout_after_charge", times=1, paths=["POST /v1/charges$"])
    with PaymentClient(payments.url, read_timeout=0.5) as client:
        with pytest.raises(ProviderUnavailable):
            client.charge(9, 2500, "EUR", CARD, "order-9")
        # the charge exists although the client never heard of it
        [charged] = _charges(payments)
        # When the job retries with the same key, Then it gets that very charge back
        retried = client.charge(9, 2500, "EUR", CARD, "order-9")
    assert retried["id"] == charged["id"] and retried["replayed"]
    assert len(_charges(payments)) == 1


def test_a_slow_answer_arrives_after_the_delay(payments, pay):
    payments.set_faults(mode="slow", delay_s=0.3)
    started = time.monotonic()
    assert pay.charge(10, 100, "EUR", CARD, "order-10")["status"] == "captured"
    assert time.monotonic() - started >= 0.3


def test_faults_hit_only_matching_paths_and_never_the_admin_endpoints(payments, pay):
    payments.set_faults(mode="http_500", paths=["/v1/refunds"])
    charge = pay.charge(11, 100, "EUR", CARD, "order-11")
    with pytest.raises(ProviderUnavailable):
        pay.refund(charge["id"], 50, "customer request", "refund-11")
    payments.set_faults(mode="http_500")
    assert payments.admin("GET", "/_admin/health")["status"] == "ok"
    assert len(_charges(payments)) == 1


def test_malformed_fault_settings_are_refused(payments):
    for bad in (
        {"mode": "explode"},
        {"mode": "http_500", "rate": 2},
        {"mode": "slow", "typo": 1},
        {"mode": "decline_everything"},
    ):
        response = httpx.post(f"{payments.url}/_admin/faults", json=bad, timeout=5)
        assert response.status_code == 400 and response.json()["error"] == "invalid_faults"


def test_refunds_never_exceed_the_captured_amount(payments, pay):
    charge = pay.charge(12, 1000, "EUR", CARD, "order-12")
    first = pay.refund(charge["id"], 600, "damaged", "refund-12-a")
    assert pay.refund(charge["id"], 600, "damaged", "refund-12-a")["id"] == first["id"]  # replay
    pay.refund(charge["id"], 400, "damaged", "refund-12-b")
    with pytest.raises(ProviderRejected) as info:
        pay.refund(charge["id"], 1, "damaged", "refund-12-c")
    assert (info.value.status_code, info.value.code) == (422, "refund_exceeds_captured")
    ledger = payments.ledger()
    assert sum(r["amount_cents"] for r in ledger["refunds"]) == 1000
    assert pay.get_charge(charge["id"])["refunded_cents"] == 1000


def test_an_authorization_is_captured_or_voided_never_both(payments, pay):
    held = pay.charge(13, 300, "EUR", CARD, "order-13", capture=False)
    assert (held["status"], held["captured_cents"]) == ("authorized", 0)
    assert pay.capture(held["id"])["status"] == "captured"
    assert pay.capture(held["id"])["captured_cents"] == 300  # a retried capture is harmless
    with pytest.raises(ProviderRejected) as info:
        pay.void(held["id"])
    assert info.value.code == "charge_already_captured"
    other = pay.charge(14, 300, "EUR", CARD, "order-14", capture=False)
    assert pay.void(other["id"])["status"] == "voided"
    with pytest.raises(ProviderRejected):
        pay.capture(other["id"])
    with pytest.raises(ProviderRejected) as info:
        pay.get_charge("ch_missing")
    assert info.value.status_code == 404


# payments: signed webhooks ---------------------------------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.headers.get(HEADER), body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture()
def receiver() -> Iterator[HTTPServer]:
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_webhooks_arrive_signed_and_a_tampered_copy_does_not_verify(payments, pay, receiver):
    secret = "whsec_integration"
    url = f"http://127.0.0.1:{receiver.server_address[1]}/webhooks/standin"
    payments.admin("POST", "/_admin/webhooks", {"url": url, "secret": secret})
    charge = pay.charge(15, 900, "EUR", CARD, "order-15")
    pay.refund(charge["id"], 900, "returned", "refund-15")
    wait_until(lambda: len(receiver.received) >= 2, timeout=10, what="two webhooks")
    events = [verify(secret, body, header) for header, body in receiver.received]
    assert [e["type"] for e in events] == ["charge.succeeded", "charge.refunded"]
    assert events[0]["data"]["id"] == charge["id"] and events[0]["data"]["order_id"] == 15
    assert events[1]["data"]["refund"]["amount_cents"] == 900
    header, body = receiver.received[0]
    with pytest.raises(SignatureError):
        verify(secret, body.replace(b'"order_id":15', b'"order_id":16'), header)
    with pytest.raises(SignatureError):
        verify("whsec_wrong", body, header)
    deliveries = payments.admin("GET", "/_admin/webhooks")["deliveries"]
    assert [d["delivered"] for d in deliveries] == [True, True]
    assert "secret" not in payments.admin("GET", "/_admin/webhooks")


# warehouse -------------------------------------------------------------------------------------


def test_a_fulfilment_sent_twice_with_the_same_key_is_created_once(warehouse):
    stand_in, client = warehouse
    lines = [{"sku": "MUG-1", "quantity": 2}]
    first = client.send_fulfilment(21, lines, "ful-21")
    again = client.send_fulfilment(21, lines, "ful-21")
    assert (
        first["id"] == again["id"]
        and again["replayed"]
        and first["tracking_number"] == "TRK00000021"
    )
    with pytest.raises(ProviderRejected) as info:  # another key cannot ship the order again
        client.send_fulfilment(21, lines, "ful-21-other")
    assert info.value.code == "fulfilment_exists"
    assert client.get_fulfilment(21)["lines"] == lines
    assert len(stand_in.ledger()["fulfilments"]) == 1


def test_a_fulfilment_beyond_the_stock_on_hand_is_refused_whole(warehouse):
    stand_in, client = warehouse
    stand_in.admin("POST", "/_admin/stock", {"MUG-1": 3, "CUP-1": 1})
    with pytest.raises(ProviderRejected) as info:
        client.send_fulfilment(
            22, [{"sku": "MUG-1", "quantity": 2}, {"sku": "CUP-1", "quantity": 2}], "ful-22"
        )
    assert info.value.code == "insufficient_stock"
    client.send_fulfilment(23, [{"sku": "MUG-1", "quantity": 3}], "ful-23")
    assert stand_in.admin("GET", "/_admin/stock") == {"MUG-1": 0, "CUP-1": 1}


def test_stock_is_read_page_by_page_to_the_end(warehouse):
    stand_in, client = warehouse
    stand_in.admin("POST", "/_admin/stock", {f"SKU-{i:03d}": i for i in range(25)})
    pages = list(client.stock_pages(page_size=10))
    assert [len(page) for page in pages] == [10, 10, 5]
    levels = [level for page in pages for level in page]
    assert levels[0] == {"sku": "SKU-000", "on_hand": 0} and levels[-1] == {
        "sku": "SKU-024",
        "on_hand": 24,
    }


def test_a_flaky_stock_page_is_provider_unavailable(warehouse):
    stand_in, client = warehouse
    stand_in.admin("POST", "/_admin/stock", {"A": 1})
    stand_in.set_faults(mode="http_503", paths=["GET /v1/stock"], times=1)
    with pytest.raises(ProviderUnavailable):
        list(client.stock_pages())
    assert list(client.stock_pages()) == [[{"sku": "A", "on_hand": 1}]]


# carrier ---------------------------------------------------------------------------------------


def test_tracking_follows_the_status_the_carrier_reports(carrier):
    stand_in, client = carrier
    assert client.tracking("TRK00000031")["status"] == "in_transit"
    stand_in.admin(
        "POST",
        "/_admin/tracking",
        {"tracking_number": "TRK00000031", "status": "delivered", "location": "Lyon"},
    )
    tracking = client.tracking("TRK00000031")
    assert tracking["status"] == "delivered"
    assert [e["status"] for e in tracking["events"]] == ["label_created", "in_transit", "delivered"]
    with pytest.raises(ProviderRejected) as info:
        client.tracking("UNKNOWN-1")
    assert info.value.status_code == 404


# processes -------------------------------------------------------------------------------------


def test_a_stand_in_reports_its_real_port_and_stops_on_sigterm():
    stand_in = start_stand_in("carrier")
    assert not stand_in.url.endswith(":0") and stand_in.alive()
    assert stand_in.stop() == 0 and not stand_in.alive()
    with (
        CarrierClient(stand_in.url, connect_timeout=0.5) as client,
        pytest.raises(ProviderUnavailable),
    ):
        client.tracking("TRK1")


def test_a_stand_in_that_cannot_start_says_why(carrier_process):
    taken = int(carrier_process.url.rsplit(":", 1)[1])
    with pytest.raises(StandInError, match="Address already in use"):
        start_stand_in("warehouse", port=taken)
    with pytest.raises(ValueError):
        start_stand_in("smtp-but-not-http")
