"""Queue type and cluster node settings: what is accepted, what is refused and how it reads."""

from __future__ import annotations

import pytest

from jobcore.amqp import parameters
from jobcore.queue_types import QueueType, mismatch_message
from shop.settings import Settings, SettingsError

TWO_NODES = "amqp://u:p1@10.0.0.1:5672/shop;amqp://u:p2@10.0.0.2:5672/shop"


def test_classic_with_a_max_priority_sets_x_max_priority_and_dead_letters_to_xq():
    arguments = QueueType("classic", max_priority=10).work_arguments("orders")
    assert arguments == {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "orders.XQ",
        "x-max-priority": 10,
    }
    assert "x-max-priority" not in QueueType().work_arguments("orders")


def test_quorum_queues_carry_the_delivery_limit_and_at_least_once_dead_lettering():
    quorum = QueueType("quorum", delivery_limit=4)
    arguments = quorum.work_arguments("orders")
    assert arguments["x-queue-type"] == "quorum" and arguments["x-delivery-limit"] == 4
    assert arguments["x-dead-letter-strategy"] == "at-least-once"
    assert arguments["x-overflow"] == "reject-publish"
    assert quorum.dead_letter_arguments()["x-queue-type"] == "quorum"


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"kind": "quorum", "max_priority": 5}, "no priorities"),
        ({"kind": "stream"}, "classic or quorum"),
        ({"max_priority": 256}, "0-255"),
        ({"kind": "quorum", "delivery_limit": 0}, "at least 1"),
    ],
)
def test_a_queue_type_that_cannot_work_is_refused(kwargs, says):
    with pytest.raises(ValueError, match=says):
        QueueType(**kwargs)


def test_quorum_with_a_priority_is_refused_at_start_naming_both_variables():
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"SHOPJOBS_QUEUE_TYPE": "quorum", "SHOPJOBS_QUEUE_MAX_PRIORITY": "5"})
    assert "SHOPJOBS_QUEUE_TYPE" in str(refused.value)
    assert "SHOPJOBS_QUEUE_MAX_PRIORITY" in str(refused.value)


def test_a_node_list_is_read_each_node_checked_and_given_its_heartbeat():
    settings = Settings.from_env({"SHOPJOBS_AMQP_URL": TWO_NODES + ";"})
    assert settings.amqp_url == TWO_NODES
    nodes = settings.amqp_url_with_heartbeat.split(";")
    assert len(nodes) == 2 and all("heartbeat=30" in node for node in nodes)
    assert [p.host for p in parameters(settings.amqp_url, connection_attempts=1)] == [
        "10.0.0.1",
        "10.0.0.2",
    ]
    with pytest.raises(SettingsError, match="SHOPJOBS_AMQP_URL"):
        Settings.from_env({"SHOPJOBS_AMQP_URL": "amqp://u:p@h/v;http://other"})


def test_every_node_password_is_a_secret_and_every_node_is_checked_in_production():
    settings = Settings.from_env({"SHOPJOBS_AMQP_URL": TWO_NODES})
    assert {"p1", "p2"} <= set(settings.secret_values())
    guest = Settings.from_env({"SHOPJOBS_AMQP_URL": TWO_NODES + ";amqp://guest:x@h3/shop"})
    assert any("guest" in problem for problem in guest.production_problems())


def test_a_mismatch_names_the_argument_the_queue_and_the_way_out():
    text = mismatch_message(
        QueueType("quorum"),
        "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'orders' in vhost "
        "'shop': received the value 'quorum' of type 'longstr' but current is none",
    )
    assert "argument 'x-queue-type' of queue 'orders'" in text
    assert "quorum queues" in text and "shopjobs queues migrate" in text
