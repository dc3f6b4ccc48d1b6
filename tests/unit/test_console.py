"""The console's rules that need no database: routes, passwords, filters, fingerprints, headers."""

from __future__ import annotations

import datetime as dt
import warnings

import pytest
from starlette.routing import Route

from jobcore.console import auth, filters
from jobcore.console.app import create_app, routes
from jobcore.console.extensions import Extensions
from jobcore.console.queries.failures import fingerprint_parts
from jobcore.console.settings import ConsoleSettings
from jobcore.errors import InvalidInput
from jobcore.settings import SettingsError
from shop.cli.console import PIPELINE_STEPS
from shop.settings import Settings

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)

with warnings.catch_warnings():  # starlette 1.x asks for httpx2 at import; httpx works the same
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


def test_the_shop_console_marks_the_steps_the_order_pipeline_really_has():
    import actors  # noqa: F401  (declares the actors the pipeline names)
    from shop.orders.pipeline import order_pipeline

    assert tuple(m.actor_name for m in order_pipeline(1).messages) == PIPELINE_STEPS


def test_every_post_route_checks_the_session_the_csrf_token_and_the_role():
    posts = [r for r in routes() if isinstance(r, Route) and "POST" in (r.methods or ())]
    assert len(posts) >= 7
    for route in posts:
        if route.path in ("/login", "/logout"):  # no session yet / ends it: they check their own
            continue
        assert getattr(route.endpoint, "console_action", False), route.path
        assert route.endpoint.console_role in ("operator", "admin"), route.path
    purge = next(r for r in posts if r.path.endswith("/purge"))
    assert purge.endpoint.console_role == "admin"


def test_passwords_are_salted_scrypt_hashes_that_accept_only_the_right_password():
    first, second = (
        auth.hash_password("correct horse battery"),
        auth.hash_password("correct horse battery"),
    )
    assert first != second and first.startswith("scrypt$32768$8$1$")
    assert auth.verify_password("correct horse battery", first)
    assert not auth.verify_password("correct horse batterz", first)
    assert not auth.verify_password("anything", "md5$abc") and not auth.verify_password(
        "x", "garbage"
    )
    with pytest.raises(InvalidInput, match="12 characters"):
        auth.check_password_rules("short")


def test_roles_rank_viewer_below_operator_below_admin():
    viewer = auth.Principal(1, "v", "viewer", "t", "browser")
    admin = auth.Principal(2, "a", "admin", "t", "browser")
    assert viewer.may("viewer") and not viewer.may("operator")
    assert admin.may("operator") and admin.may("admin") and admin.operator_name == "console:a"


def _filter(query: list[tuple[str, str]]) -> filters.JobFilter:
    return filters.job_filter(filters.Params(query, filters.JOB_FILTERS), NOW)


def test_job_filters_are_typed_and_anything_malformed_is_refused_with_a_reason():
    f = _filter(
        [
            ("state", "failed"),
            ("order", "42"),
            ("since", "2h"),
            ("arg", 'kind="daily"'),
            ("arg", "order_id=42"),
        ]
    )
    assert (f.state, f.order_id, f.since) == ("failed", 42, NOW - dt.timedelta(hours=2))
    assert f.args == (("kind", "daily"), ("order_id", 42))
    for query, says in (
        ([("state", "exploded")], "state must be one of"),
        ([("order", "4x")], "whole number"),
        ([("order", "0")], "between"),
        ([("since", "yesterday")], "ISO time"),
        ([("since", "1h"), ("until", "2h")], "before until"),
        ([("arg", "no equals sign")], "name=value"),
        ([("arg", f"k{i}=1") for i in range(4)], "at most 3"),
        ([("colour", "red")], "unknown filter"),
        ([("actor", "a" * 201)], "longer than"),
        ([("state", "failed"), ("state", "dead")], "once"),
    ):
        with pytest.raises(InvalidInput, match=says):
            _filter(query)


def test_a_page_cursor_round_trips_and_a_forged_one_is_a_bad_request():
    cursor = filters.encode_cursor(NOW, "abc")
    assert filters.decode_cursor(cursor, (dt.datetime, str)) == [NOW, "abc"]
    for forged in (
        "not-base64!",
        filters.encode_cursor("x", "y"),
        filters.encode_cursor(NOW),
        filters.encode_cursor(NOW, "x" * 100),
    ):
        with pytest.raises(InvalidInput, match="cursor"):
            filters.decode_cursor(forged, (dt.datetime, str))


def test_failure_fingerprints_ignore_ids_and_numbers_but_keep_the_class_and_the_frame():
    tb = 'Traceback:\n  File "/app/shop/payments/payments.py", line 52, in charge_order\n    x\n'
    one = fingerprint_parts("PaymentDeclined: card declined for order 17 ('tok_abc')", tb)
    two = fingerprint_parts("PaymentDeclined: card declined for order 9912 ('tok_xyz')", tb)
    assert (
        one
        == two
        == (
            "PaymentDeclined",
            "card declined for order <n> ('…')",
            "payments/payments.py:charge_order",
        )
    )
    assert fingerprint_parts("TimeoutError: read timed out", None)[0] == "TimeoutError"


def test_console_settings_refuse_a_bad_bind_address_and_default_to_loopback():
    assert ConsoleSettings.from_env({}).bind == "127.0.0.1"
    assert ConsoleSettings.from_env({}).secure_cookies is True
    with pytest.raises(SettingsError, match="SHOPJOBS_CONSOLE_BIND"):
        ConsoleSettings.from_env({"SHOPJOBS_CONSOLE_BIND": "everywhere"})


@pytest.fixture()
def client():
    app = create_app(Settings.from_env(), ConsoleSettings.from_env({}), Extensions())
    with TestClient(app, base_url="https://testserver") as c:
        yield c


def test_every_answer_carries_a_strict_content_security_policy_and_no_caching(client):
    response = client.get("/login")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert (
        "script-src 'self'" in csp
        and "unsafe-inline" not in csp
        and "frame-ancestors 'none'" in csp
    )
    assert (
        response.headers["x-frame-options"] == "DENY"
        and response.headers["cache-control"] == "no-store"
    )
    login_cookie = response.cookies.get("shopjobs-console-login")
    assert login_cookie and 'name="csrf_token" value="' + login_cookie in response.text


def test_a_login_without_its_csrf_token_or_from_another_site_is_refused(client):
    client.get("/login")
    assert client.post("/login", data={"name": "a", "password": "b"}).status_code == 403
    token = client.cookies.get("shopjobs-console-login")
    cross = client.post(
        "/login",
        data={"name": "a", "password": "b", "csrf_token": token},
        headers={"origin": "https://evil.example", "sec-fetch-site": "cross-site"},
    )
    assert cross.status_code == 403


def test_over_long_urls_are_refused_before_routing_and_pages_need_a_login(client):
    assert client.get("/jobs?" + "a=1&" * 1000).status_code == 414
    page = client.get("/jobs", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=%2Fjobs"
    assert client.get("/jobs.json").status_code == 401
    assert client.get("/login?next=//evil.example").text.count('value="/"') == 1
