"""Messages decode by orjson exactly as Dramatiq's JSONEncoder decodes them."""

from __future__ import annotations

import math

import dramatiq
import pytest
from dramatiq.encoder import JSONEncoder
from dramatiq.errors import DecodeError

from jobcore.encoding import OrjsonDecodingEncoder

VALUES = [
    {"order_id": 42, "total": 45.99, "note": "café \u2028 ☕", "tags": [None, True, False]},
    {"big": 2**70, "negative": -(2**64), "edge": 2**63 - 1, "also": 2**64 - 1},
    {"digits_in_text": "12345678901234567890123", "fraction": 0.1234567890123456789},
    {"nan": float("nan"), "inf": float("inf")},  # json.dumps writes NaN and Infinity
    [],
]


@pytest.mark.parametrize("value", VALUES)
def test_decoded_values_equal_dramatiqs_including_types(value):
    data = JSONEncoder().encode(value)
    ours, theirs = OrjsonDecodingEncoder().decode(data), JSONEncoder().decode(data)
    assert repr(ours) == repr(theirs)  # types too: 2**70 stays an int, not a float
    if isinstance(value, dict) and "nan" in value:
        assert math.isnan(ours["nan"]) and ours["inf"] == math.inf


@pytest.mark.parametrize("data", [b"\xff\xfe", b"{not json", b""])
def test_what_is_not_json_raises_dramatiqs_decode_error(data):
    with pytest.raises(DecodeError):
        OrjsonDecodingEncoder().decode(data)


def test_the_shop_broker_decodes_with_it_and_a_message_round_trips():
    import broker  # noqa: F401  (sets the encoder)

    assert isinstance(dramatiq.get_encoder(), OrjsonDecodingEncoder)
    message = dramatiq.Message(
        queue_name="q", actor_name="a", args=(1, 2**70), kwargs={"k": "v"}, options={"x": 1}
    )
    assert dramatiq.Message.decode(message.encode()) == message
