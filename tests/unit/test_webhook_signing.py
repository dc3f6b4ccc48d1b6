"""Webhook signatures: a signed body verifies; tampered, forged, stale or malformed ones do not."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from jobcore.errors import PermanentError
from shop.payments.webhook_signing import HEADER, SignatureError, sign, verify

SECRET = "whsec_test"
NOW = 1_700_000_000
BODY = json.dumps(
    {
        "id": "evt_1",
        "type": "charge.succeeded",
        "created": NOW,
        "data": {"id": "ch_1", "order_id": 7},
    }
).encode()


def test_the_header_is_t_and_a_hex_hmac_of_timestamp_dot_body():
    # Given the documented scheme, computed independently
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    # Then sign produces exactly that header
    assert sign(SECRET, BODY, NOW) == f"t={NOW},v1={expected}"
    assert HEADER == "Shop-Signature"


def test_a_signed_body_verifies_and_returns_the_event():
    event = verify(SECRET, BODY, sign(SECRET, BODY, NOW), now=NOW + 10)
    assert event["id"] == "evt_1" and event["data"]["order_id"] == 7


def test_a_tampered_body_is_rejected():
    header = sign(SECRET, BODY, NOW)
    tampered = BODY.replace(b'"order_id": 7', b'"order_id": 8')
    with pytest.raises(SignatureError) as info:
        verify(SECRET, tampered, header, now=NOW)
    assert info.value.reason == "signature_mismatch"


def test_a_signature_made_with_another_secret_is_rejected():
    with pytest.raises(SignatureError) as info:
        verify(SECRET, BODY, sign("whsec_attacker", BODY, NOW), now=NOW)
    assert info.value.reason == "signature_mismatch"


def test_a_forged_hex_digest_is_rejected():
    with pytest.raises(SignatureError) as info:
        verify(SECRET, BODY, f"t={NOW},v1={'0' * 64}", now=NOW)
    assert info.value.reason == "signature_mismatch"


def test_a_changed_timestamp_breaks_the_signature():
    # Given a captured header whose t= is moved forward to dodge the staleness check
    digest = sign(SECRET, BODY, NOW).split("v1=")[1]
    with pytest.raises(SignatureError) as info:
        verify(SECRET, BODY, f"t={NOW + 1000},v1={digest}", now=NOW + 1000)
    assert info.value.reason == "signature_mismatch"


@pytest.mark.parametrize("offset", [301, -301, 86_400])
def test_a_signature_outside_the_tolerance_is_stale(offset):
    with pytest.raises(SignatureError) as info:
        verify(SECRET, BODY, sign(SECRET, BODY, NOW), tolerance_s=300, now=NOW + offset)
    assert info.value.reason == "stale_timestamp"


def test_a_signature_at_the_edge_of_the_tolerance_is_accepted():
    assert (
        verify(SECRET, BODY, sign(SECRET, BODY, NOW), tolerance_s=300, now=NOW + 300)["id"]
        == "evt_1"
    )


def test_any_matching_v1_entry_is_accepted_so_secrets_can_rotate():
    old = sign("whsec_old", BODY, NOW).split(",")[1]
    header = f"{sign(SECRET, BODY, NOW)},{old}"
    assert verify(SECRET, BODY, header, now=NOW)["id"] == "evt_1"
    assert verify("whsec_old", BODY, header, now=NOW)["id"] == "evt_1"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        f"t={NOW}",
        "v1=abc",
        "t=soon,v1=abc",
        f"t={NOW},v0=abc",
        f"t={NOW},v1=\u00e9\u00e9",
    ],
)
def test_a_missing_or_malformed_header_is_rejected(header):
    with pytest.raises(SignatureError) as info:
        verify(SECRET, BODY, header, now=NOW)
    assert info.value.reason in ("malformed_header", "signature_mismatch")


def test_a_correctly_signed_body_that_is_not_a_json_object_is_rejected():
    for body in (b"not json", b"[1, 2]"):
        with pytest.raises(SignatureError) as info:
            verify(SECRET, body, sign(SECRET, body, NOW), now=NOW)
        assert info.value.reason == "invalid_body"


def test_a_rejection_is_a_permanent_error_and_an_empty_secret_is_refused():
    assert issubclass(SignatureError, PermanentError)
    with pytest.raises(ValueError):
        sign("", BODY, NOW)
    with pytest.raises(ValueError):
        verify("", BODY, sign(SECRET, BODY, NOW), now=NOW)


def test_any_of_several_active_secrets_verifies_during_a_rotation():
    # Given the old and the new secret both active
    active = ["whsec_new_2", SECRET]
    # Then a body signed with either verifies, and one signed with neither does not
    assert verify(active, BODY, sign(SECRET, BODY, NOW), now=NOW)["id"] == "evt_1"
    assert verify(active, BODY, sign("whsec_new_2", BODY, NOW), now=NOW)["id"] == "evt_1"
    with pytest.raises(SignatureError) as info:
        verify(active, BODY, sign("whsec_retired", BODY, NOW), now=NOW)
    assert info.value.reason == "signature_mismatch"
    with pytest.raises(ValueError):
        verify([], BODY, sign(SECRET, BODY, NOW), now=NOW)
