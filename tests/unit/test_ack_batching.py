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


def test_a_delivery_reads_its_messages_own_fields_without_the_proxys_lookup():
    from dramatiq import Message
    from dramatiq.broker import MessageProxy

    from jobcore.acks import expose_fields

    # Given a delivered message's proxy
    message = Message(queue_name="q", actor_name="a", args=(1,), kwargs={"k": 2}, options={})
    proxy = MessageProxy(message)

    # When its fields are exposed
    expose_fields(proxy)

    # Then each is the message's own object, found without __getattr__, and a change to the
    # options (Retries counts retries there) is seen through either
    for field in ("queue_name", "actor_name", "args", "kwargs", "options", "message_id"):
        assert field in vars(proxy)
        assert getattr(proxy, field) is getattr(message, field)
    proxy.options["retries"] = 1
    assert message.options == {"retries": 1}
    assert proxy.message_timestamp == message.message_timestamp
    assert proxy.failed is False and proxy._message is message
