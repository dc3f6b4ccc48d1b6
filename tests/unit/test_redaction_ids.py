"""The card-number pattern masks card numbers and never a message id (log lines join the ledger)."""

from __future__ import annotations

import json
import uuid

import pytest

from jobcore.redaction import scrub_text

IDS_STARTING_WITH_DIGITS = [
    "12345678-9012-3456-b702-cc3bda15d0a1",  # 16 digits before the first letter
    "1234567890123-4567-89ab-cdef-0123456789ab"[:36],
    "12345678-9012-3456-7890-123456789012",  # a uuid of digits only
    "99999999-9999-4999-8999-999999999999",
    "bad-0.44171293302917614",  # the main job's malformed messages: a fraction's 17 digits
]


@pytest.mark.parametrize("message_id", IDS_STARTING_WITH_DIGITS)
def test_a_message_id_that_starts_with_13_or_more_digits_is_left_alone(message_id):
    line = json.dumps({"event": "job succeeded", "message_id": message_id, "actor": "orders.x"})
    assert scrub_text(line) == line
    assert (
        scrub_text(f"orders.process[{message_id!r}] done") == f"orders.process[{message_id!r}] done"
    )


def test_random_message_ids_survive_scrubbing():
    # uuid4 ids whose first groups are all digits, built on purpose (about 0.4 % occur naturally)
    for _ in range(2000):
        raw = uuid.uuid4().hex
        digits = "".join(str(int(c, 16) % 10) for c in raw[:20]) + raw[20:]
        message_id = str(uuid.UUID(digits))
        assert scrub_text(f"message_id={message_id}") == f"message_id={message_id}"


@pytest.mark.parametrize(
    "card",
    ["4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111", "378282246310005"],
)
def test_card_numbers_are_still_masked(card):
    assert scrub_text(f"charged card {card}, ok") == "charged card [number], ok"
    assert scrub_text(f"card ending the sentence {card}.") == "card ending the sentence [number]."
    assert scrub_text(json.dumps({"card": card})) == json.dumps({"card": "[number]"})
