"""Outbound calls refuse hosts off the allow-list and private addresses, at every redirect hop:
image downloads and price sources follow checked redirects; the parties' clients (payment
provider, warehouse, carrier), the SMS gateway and the health probes follow none.

Two loopback stand-ins speak real HTTP: the *source* redirects wherever the test asks, the
*inside* one plays an internal service that serves an image and counts who reached it. Only
the source is listed in the test's allow-list (loopback is refused unless listed).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image

# the parties' calls hold limit slots in the run's database (not emptied per test here: the limit
# remembers per process that its slots exist, and the clean fixture's TRUNCATE would drop them)
import broker  # noqa: F401  (builds and installs the settings, configures the engine)
from shop.catalog import images
from shop.integrations import providers
from shop.integrations.http_clients import ProviderRejected, ProviderUnavailable
from shop.integrations.outbound import OutboundRefused, Policy
from shop.notifications import sms
from shop.ops import health_probes
from shop.prices import sources
from shop.settings import Settings


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(out, "PNG")
    return out.getvalue()


PNG = _png()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.hits.append(self.path)  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        target = getattr(self.server, "redirect_all", None)
        if parts.path == "/redirect" or target:
            self.send_response(302)
            self.send_header("Location", target or parse_qs(parts.query)["to"][0])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(PNG)))
        self.end_headers()
        self.wfile.write(PNG)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def servers() -> Iterator[dict[str, ThreadingHTTPServer]]:
    started = {}
    for name in ("source", "inside"):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.hits = []  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started[name] = server
    yield started
    for server in started.values():
        server.shutdown()
        server.server_close()


def _url(server: ThreadingHTTPServer, path: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


def _only(server: ThreadingHTTPServer) -> Policy:
    return Policy.parse(f"127.0.0.1:{server.server_address[1]}")


def test_an_allowed_source_is_downloaded_and_a_redirect_between_allowed_hosts_is_followed(servers):
    source, inside = servers["source"], servers["inside"]
    assert images.download(_url(source, "/a.png"), 10_000, 5, _only(source)) == PNG
    # with both listed, the redirect is followed: the refusals below are the policy's doing
    both = Policy.parse(
        f"127.0.0.1:{source.server_address[1]},127.0.0.1:{inside.server_address[1]}"
    )
    redirect = _url(source, "/redirect?to=" + _url(inside, "/b.png"))
    assert images.download(redirect, 10_000, 5, both) == PNG
    assert inside.hits == ["/b.png"]


def test_a_redirect_to_127_0_0_1_is_refused_and_never_reaches_it(servers):
    source, inside = servers["source"], servers["inside"]
    redirect = _url(source, "/redirect?to=" + _url(inside, "/b.png"))
    with pytest.raises(OutboundRefused, match="not in SHOPJOBS_OUTBOUND_ALLOWED_HOSTS"):
        images.download(redirect, 10_000, 5, _only(source))
    assert source.hits == ["/redirect?to=" + _url(inside, "/b.png")] and inside.hits == []


def test_a_redirect_to_the_metadata_address_169_254_169_254_is_refused(servers):
    source = servers["source"]
    redirect = _url(source, "/redirect?to=http://169.254.169.254/latest/meta-data/iam/")
    with pytest.raises(OutboundRefused, match="169.254.169.254"):
        images.download(redirect, 10_000, 5, _only(source))
    # a wildcard entry that matches the name does not make a link-local address acceptable
    with pytest.raises(OutboundRefused, match="link-local"):
        Policy.parse("*.254").address("169.254.169.254", 80)
    assert source.hits == ["/redirect?to=http://169.254.169.254/latest/meta-data/iam/"]


@pytest.mark.parametrize(
    "host",
    ["localhost", "127.0.0.1", "10.1.2.3", "192.168.0.10", "169.254.169.254", "::1", "0.0.0.0"],
)
def test_without_an_allow_list_private_loopback_and_link_local_addresses_are_refused(host):
    # "localhost" is refused after DNS resolution: its name says nothing, its address does
    with pytest.raises(OutboundRefused):
        Policy().address(host, 80)


def test_an_image_url_that_resolves_to_loopback_is_refused_by_default(servers):
    with pytest.raises(OutboundRefused, match="resolves to 127.0.0.1"):
        images.download(f"http://localhost:{servers['source'].server_address[1]}/a.png", 10_000, 5)
    assert servers["source"].hits == []


def test_a_price_source_is_allowed_by_being_configured_but_not_its_redirects(servers):
    source, inside = servers["source"], servers["inside"]
    source.redirect_all = _url(inside, "/v1/rates")  # type: ignore[attr-defined]
    configured = [("primary", _url(source, ""))]
    # configured on loopback but not listed: refused before any byte is sent
    with pytest.raises(sources.SourceFailed, match="resolves to 127.0.0.1"):
        sources.fetch(configured[0][1], "EUR_USD", 900, 5, sources.policy_for("", configured))
    assert source.hits == []
    # listed explicitly (as the tests list their stand-ins), it is reached; its redirect is not
    policy = sources.policy_for(f"127.0.0.1:{source.server_address[1]}", configured)
    with pytest.raises(sources.SourceFailed, match="not in SHOPJOBS_OUTBOUND_ALLOWED_HOSTS"):
        sources.fetch(configured[0][1], "EUR_USD", 900, 5, policy)
    assert len(source.hits) == 1 and inside.hits == []


METADATA = "http://169.254.169.254/latest/meta-data/iam/"


def _settings(**env: str) -> Settings:
    return Settings.from_env({"SHOPJOBS_HTTP_TIMEOUT_S": "2", **env})


@pytest.mark.parametrize("target", ["inside", "metadata"])
def test_the_parties_clients_never_follow_a_redirect_to_loopback_or_the_metadata_address(
    infrastructure, servers, target
):
    # Given the payment provider, warehouse and carrier configured at a listed loopback endpoint
    # that answers every request with a redirect to 127.0.0.1 (another port) or 169.254.169.254
    source, inside = servers["source"], servers["inside"]
    source.redirect_all = _url(inside, "/x") if target == "inside" else METADATA  # type: ignore[attr-defined]
    url = _url(source, "")
    s = _settings(
        SHOPJOBS_PAYMENT_URL=url,
        SHOPJOBS_WAREHOUSE_URL=url,
        SHOPJOBS_CARRIER_URL=url,
        SHOPJOBS_OUTBOUND_ALLOWED_HOSTS=f"127.0.0.1:{source.server_address[1]}",
    )
    providers.configure(s)
    try:
        # When each client calls it, Then the redirect is refused for good and never followed
        calls = [
            lambda: providers.payments().charge(1, 100, "EUR", "tok_visa", "k-1"),
            lambda: providers.warehouse().get_fulfilment(1),
            lambda: providers.carrier().tracking("TRK1"),
        ]
        for call in calls:
            with pytest.raises(ProviderRejected, match="302"):
                call()
    finally:
        providers.configure(Settings.from_env())
    assert len(source.hits) == 3 and inside.hits == []


def test_the_parties_clients_refuse_an_unlisted_loopback_endpoint_and_reach_a_listed_one(
    infrastructure, servers
):
    source = servers["source"]
    url = _url(source, "")
    # not listed: the provider's own configured host on loopback is refused before connecting
    providers.configure(_settings(SHOPJOBS_CARRIER_URL=url))
    try:
        with pytest.raises(OutboundRefused, match="resolves to 127.0.0.1"):
            providers.carrier().tracking("TRK1")
        assert source.hits == []
        # the health probe of a party goes through the same guard
        with pytest.raises(health_probes.Down, match="resolves to 127.0.0.1"):
            health_probes.carrier(_settings(SHOPJOBS_CARRIER_URL=url))
        # listed explicitly: reached (the image server answers 200 with a PNG, not JSON)
        listed = _settings(
            SHOPJOBS_CARRIER_URL=url,
            SHOPJOBS_OUTBOUND_ALLOWED_HOSTS=f"127.0.0.1:{source.server_address[1]}",
        )
        providers.configure(listed)
        with pytest.raises(ProviderUnavailable, match="without a JSON object"):
            providers.carrier().tracking("TRK1")
        assert health_probes.carrier(listed) == "HTTP 200"
    finally:
        providers.configure(Settings.from_env())
    assert len(source.hits) == 2


@pytest.mark.parametrize("target", ["inside", "metadata"])
def test_the_sms_gateway_client_never_follows_a_redirect_and_refuses_an_unlisted_loopback(
    infrastructure, servers, target
):
    source, inside = servers["source"], servers["inside"]
    source.redirect_all = _url(inside, "/x") if target == "inside" else METADATA  # type: ignore[attr-defined]
    url = _url(source, "")
    with pytest.raises(sms.SmsPermanent, match="resolves to 127.0.0.1"):
        sms.send(_settings(SHOPJOBS_SMS_URL=url), "+4915100000000", "hi", "key-1")
    assert source.hits == []
    listed = _settings(
        SHOPJOBS_SMS_URL=url,
        SHOPJOBS_OUTBOUND_ALLOWED_HOSTS=f"127.0.0.1:{source.server_address[1]}",
    )
    with pytest.raises(sms.SmsPermanent, match="302"):
        sms.send(listed, "+4915100000000", "hi", "key-1")
    assert len(source.hits) == 1 and inside.hits == []
