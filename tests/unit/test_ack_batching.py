"""Which acks one commit may release with ``basic_ack(multiple=True)``."""

from __future__ import annotations

from jobcore.acks import split_acks


def test_with_nothing_unsettled_one_multiple_ack_covers_every_tag():
    assert split_acks([3, 1, 2], []) == (3, [])


def test_a_multiple_ack_stops_below_the_lowest_unsettled_delivery():
    # Given tag 4 still running (or waiting for its ledger row, or rejected later)
    # Then tags 1-3 go in one multiple ack and 5, 7 are acked one by one
    assert split_acks([7, 1, 5, 2, 3], {4, 6, 9}) == (3, [5, 7])


def test_when_the_oldest_delivery_is_unsettled_every_tag_is_acked_singly():
    assert split_acks([5, 6], {2}) == (None, [5, 6])
