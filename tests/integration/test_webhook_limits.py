"""The webhook endpoint refuses a huge body without reading it, and verifies with rotated secrets.

The endpoint runs as its real process (``python -m programs.webhooks``); its memory is read
from /proc/<pid>/status: VmHWM is the peak resident size, so a body that was buffered and then
freed still shows.
"""

from __future__ import annotations

import json
import selectors
import socket
import time
from urllib.parse import urlparse

import httpx
import pytest

import broker  # noqa: F401  (builds and installs the settings, configures the engine)
from shop.payments import webhook_signing
from tests.support.webhook_endpoint import WebhookEndpoint

OLD, NEW = "whsec_old_secret_1", "whsec_new_secret_2"
HUGE = 300 * 1024 * 1024
MIB_KB = 1024


@pytest.fixture()
def endpoint(clean):
    started = WebhookEndpoint(env={"SHOPJOBS_PAYMENT_WEBHOOK_SECRET": f"{NEW},{OLD}"})
    yield started
    started.stop()


def _memory_kb(pid: int) -> dict[str, int]:
    with open(f"/proc/{pid}/status") as fh:
        fields = dict(line.split(":", 1) for line in fh)
    return {key: int(fields[key].split()[0]) for key in ("VmRSS", "VmHWM")}


def _signed(body: bytes, secret: str) -> dict[str, str]:
    return {
        webhook_signing.HEADER: webhook_signing.sign(secret, body, int(time.time())),
        "content-type": "application/json",
    }


def _warm(endpoint: WebhookEndpoint) -> None:
    # a first request imports and allocates what every request needs; memory is compared after it
    body = json.dumps({"id": "evt_warm", "type": "charge.succeeded", "data": {}}).encode()
    httpx.post(
        endpoint.url + "/webhooks/standin", content=body, headers=_signed(body, "x" * 8), timeout=10
    )


def _connect(endpoint: WebhookEndpoint) -> socket.socket:
    url = urlparse(endpoint.url)
    sock = socket.create_connection((url.hostname, url.port), timeout=15)
    return sock


def _response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_a_300_mb_body_is_refused_on_its_content_length_before_a_byte_is_read(endpoint):
    # Given a running endpoint that has served one request
    _warm(endpoint)
    before = _memory_kb(endpoint.proc.pid)

    # When a client announces 300 MB and sends not one byte of it
    sock = _connect(endpoint)
    try:
        sock.sendall(
            b"POST /webhooks/standin HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % HUGE
        )
        started = time.monotonic()
        answer = _response(sock)  # blocks until the endpoint answers (timeout 15 s)
        elapsed = time.monotonic() - started
    finally:
        sock.close()

    # Then the answer is 413 at once: decided on the header, the body was never needed
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert elapsed < 2.0
    after = _memory_kb(endpoint.proc.pid)
    assert after["VmHWM"] - before["VmHWM"] < MIB_KB, (before, after)


def test_a_body_without_content_length_is_cut_off_by_the_running_limit(endpoint):
    # Given a running endpoint that has served one request
    _warm(endpoint)
    before = _memory_kb(endpoint.proc.pid)

    # When a client streams up to 300 MB in chunks, with no Content-Length, until it is answered
    sock = _connect(endpoint)
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    sent, chunk = 0, b"x" * 65536
    try:
        sock.sendall(
            b"POST /webhooks/standin HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        while sent < HUGE and not selector.select(timeout=0):
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:  # the endpoint closed the connection after answering
                break
            sent += len(chunk)
        answer = _response(sock)
    finally:
        selector.close()
        sock.close()

    # Then it was answered 413 long before the 300 MB were sent, and its memory did not grow
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < HUGE // 10, sent
    after = _memory_kb(endpoint.proc.pid)
    assert after["VmHWM"] - before["VmHWM"] < 2 * MIB_KB, (before, after)


def test_both_active_secrets_verify_a_retired_one_does_not_and_rejections_are_counted(endpoint):
    url = endpoint.url + "/webhooks/standin"
    answers = {}
    for name, secret in (("new", NEW), ("old", OLD), ("retired", "whsec_retired_0")):
        body = json.dumps({"id": f"evt_{name}", "type": "charge.succeeded", "data": {}}).encode()
        answers[name] = httpx.post(url, content=body, headers=_signed(body, secret), timeout=10)
    assert answers["new"].status_code == answers["old"].status_code == 200
    assert answers["new"].json() == answers["old"].json() == {"status": "accepted"}
    assert answers["retired"].status_code == 400
    assert answers["retired"].json() == {"error": "signature_mismatch"}
    too_large = httpx.post(url, content=b"x" * (300 * 1024), headers=_signed(b"", NEW), timeout=10)
    assert too_large.status_code == 413

    scrape = httpx.get(endpoint.url + "/metrics", timeout=10).text
    assert 'shopjobs_webhook_requests_total{outcome="accepted",provider="standin"} 2.0' in scrape
    assert (
        'shopjobs_webhook_requests_total{outcome="signature_mismatch",provider="standin"} 1.0'
        in scrape
    )
    assert 'shopjobs_webhook_requests_total{outcome="too_large",provider="standin"} 1.0' in scrape
