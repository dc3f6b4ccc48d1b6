"""Queue type as configuration, on the real RabbitMQ: priorities on classic queues, quorum
queues with their native delivery limit, a refused start on a queue of another type, the
migration from classic to quorum, and a node list whose first node is down."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator

import pika
import pytest
from dramatiq import Message
from sqlalchemy import func, select

import broker as _app  # noqa: F401  (configures the process: database, routes, broker)
from devtools import devservices
from devtools.processes import SHOPJOBS
from jobcore.db import session_scope
from jobcore.models import DeadLetter, LedgerEntry
from jobcore.queue_types import QueueArgumentsMismatch, QueueType, TypedQueuesBroker
from jobcore.relay import Publisher
from middleware.queue_check import QueueCheck
from shop.queues import Queue
from tests.conftest import VHOST
from tests.support.waiting import wait_until

BASE = "amqp://guest:guest@127.0.0.1:5672/"
DEAD_NODE = "amqp://guest:guest@127.0.0.1:1/"  # nothing listens on port 1: connection refused


@pytest.fixture()
def own_vhost() -> Iterator[str]:
    """A vhost of this test alone (queue types cannot change in place, so none are shared)."""
    vhost = f"{VHOST}_qt_{uuid.uuid4().hex[:8]}"
    devservices.create_vhost(vhost)
    try:
        yield BASE + vhost
    finally:
        devservices.delete_vhost(vhost)


def _broker(url: str, queue_type: QueueType) -> TypedQueuesBroker:
    broker = TypedQueuesBroker(url=url, confirm_delivery=True, middleware=[])
    broker.queue_type = queue_type
    return broker


def _message(queue: str, n: int, priority: int | None = None) -> Message:
    options = {} if priority is None else {"broker_priority": priority}
    return Message(queue_name=queue, actor_name="tests.noop", args=(n,), kwargs={}, options=options)


def _drain(url: str, queue: str) -> list[tuple[bytes, dict]]:
    """Every message of ``queue`` (body, headers), in delivery order, acked."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        out = []
        while True:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return out
            out.append((body, properties.headers or {}))
    finally:
        connection.close()


def _declares_as(url: str, queue: str, arguments: dict) -> bool:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        connection.channel().queue_declare(queue, durable=True, arguments=arguments)
        return True
    except pika.exceptions.ChannelClosedByBroker as exc:
        assert exc.reply_code == 406, exc
        return False
    finally:
        if connection.is_open:
            connection.close()


def test_classic_queues_with_a_max_priority_deliver_higher_priority_first(own_vhost):
    # Given classic queues declared with priorities 0-10
    broker = _broker(own_vhost, QueueType("classic", max_priority=10))
    broker.declare_queue("prio", ensure=True)
    # When low-priority messages are sent first, by Dramatiq's enqueue and by our relay
    for n in range(3):
        broker.enqueue(_message("prio", n, priority=1))
    publisher = Publisher(own_vhost, lambda q: broker.declare_queue(q, ensure=True))
    late = [_message("prio", 100 + n, priority=9) for n in range(2)]
    assert publisher.publish([(m.message_id, "prio", m.encode(), None) for m in late]) == {
        m.message_id for m in late
    }
    publisher.close()
    broker.close()

    # Then the high-priority ones come out first: the setting is in force, not silently off
    order = [Message.decode(body).args[0] for body, _ in _drain(own_vhost, "prio")]
    assert order == [100, 101, 0, 1, 2]


def test_a_quorum_queue_dead_letters_a_message_past_its_delivery_limit(own_vhost):
    # Given quorum queues with a delivery limit of 2
    broker = _broker(own_vhost, QueueType("quorum", delivery_limit=2))
    broker.declare_queue("poison", ensure=True)
    broker.enqueue(_message("poison", 1))
    broker.close()
    assert _declares_as(own_vhost, "poison", {"x-queue-type": "quorum"}) is False  # all args
    assert _declares_as(own_vhost, "poison", {}) is False  # not a classic queue

    # When a consumer dies holding it, again and again (its channel closes unacked)
    deliveries = 0
    for _ in range(6):
        connection = pika.BlockingConnection(pika.URLParameters(own_vhost))
        method, _, _ = connection.channel().basic_get("poison", auto_ack=False)
        connection.close()
        if method is None:
            break
        deliveries += 1

    # Then RabbitMQ itself parked it in the dead-letter queue after limit + 1 deliveries
    assert deliveries == 3
    parked = _drain(own_vhost, "poison.XQ")
    assert len(parked) == 1
    assert parked[0][1]["x-first-death-reason"] == "delivery_limit"


def test_declaring_a_queue_that_exists_as_another_type_fails_at_once_saying_what_differs(
    own_vhost,
):
    # Given classic queues already in RabbitMQ
    classic = _broker(own_vhost, QueueType("classic"))
    classic.declare_queue("orders", ensure=True)
    classic.close()
    # When an application configured for quorum queues declares them
    broker = _broker(own_vhost, QueueType("quorum"))
    with pytest.raises(QueueArgumentsMismatch) as refused:
        broker.declare_queue("orders", ensure=True)
    broker.close()
    # Then it says which argument differs, and what to do
    text = str(refused.value)
    assert "inequivalent arg" in text and "of queue 'orders'" in text
    assert "SHOPJOBS_QUEUE_TYPE" in text and "shopjobs queues migrate" in text


def test_a_worker_group_configured_for_another_queue_type_stops_at_start_with_the_reason(
    own_vhost, clean
):
    # Given the application's queues as classic queues
    classic = _broker(own_vhost, QueueType("classic"))
    for queue in Queue:
        classic.declare_queue(queue.value, ensure=True)
    classic.close()
    # When the worker group starts with quorum queues configured
    done = subprocess.run(
        [SHOPJOBS, "worker", "actors", "-p", "1", "-t", "1"],
        env={**os.environ, "SHOPJOBS_AMQP_URL": own_vhost, "SHOPJOBS_QUEUE_TYPE": "quorum"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Then it stops at once with the start-failure code and the reason, without restarting
    assert done.returncode == 2, done.stderr[-3000:]
    assert "inequivalent arg" in done.stderr
    assert "could not start" in done.stderr
    assert "restarting it in" not in done.stderr


def _shopjobs(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SHOPJOBS, "queues", *args],
        env={**os.environ, "SHOPJOBS_AMQP_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_migrating_classic_queues_to_quorum_keeps_every_message(own_vhost):
    # Given the application's classic queues holding ready, delayed and dead messages
    classic = _broker(own_vhost, QueueType("classic"))
    for queue in Queue:
        classic.declare_queue(queue.value, ensure=True)
    orders = Queue.ORDERS.value
    sent = {
        orders: [_message(orders, n) for n in range(50)],
        orders + ".DQ": [_message(orders + ".DQ", n) for n in range(7)],
        orders + ".XQ": [_message(orders + ".XQ", n) for n in range(5)],
    }
    with pika.BlockingConnection(pika.URLParameters(own_vhost)) as connection:
        channel = connection.channel()
        channel.confirm_delivery()
        for queue, messages in sent.items():
            for m in messages:
                channel.basic_publish("", queue, m.encode(), pika.BasicProperties(delivery_mode=2))
    classic.close()

    # When an operator migrates them to quorum, twice (the second run finds nothing to do)
    first = _shopjobs(own_vhost, "migrate", "--to", "quorum", "--json")
    again = _shopjobs(own_vhost, "migrate", "--to", "quorum", "--json")

    # Then every queue is a quorum queue now, holding exactly the messages it held
    assert first.returncode == 0, first.stderr
    moved = {row["queue"]: row["messages"] for row in json.loads(first.stdout)}
    assert moved[orders] == 50 and moved[orders + ".DQ"] == 7 and moved[orders + ".XQ"] == 5
    assert again.returncode == 0, again.stderr
    assert all(row["skipped"] for row in json.loads(again.stdout))
    quorum = QueueType("quorum")
    assert _declares_as(own_vhost, orders, quorum.work_arguments(orders))
    assert _declares_as(own_vhost, orders + ".XQ", quorum.dead_letter_arguments())
    for queue, messages in sent.items():
        bodies = [body for body, _ in _drain(own_vhost, queue)]
        assert sorted(bodies) == sorted(m.encode() for m in messages), queue


def test_migration_is_refused_while_a_worker_consumes(own_vhost):
    # Given a consumer on one of the queues
    classic = _broker(own_vhost, QueueType("classic"))
    classic.declare_queue(Queue.ORDERS.value, ensure=True)
    classic.close()
    with pika.BlockingConnection(pika.URLParameters(own_vhost)) as connection:
        channel = connection.channel()
        channel.basic_consume(Queue.ORDERS.value, lambda *a: None)
        # When the migration runs
        done = _shopjobs(own_vhost, "migrate", "--to", "quorum")
    # Then it refuses, saying why, and the queue is still the classic one
    assert done.returncode == 1
    assert "consumer" in done.stderr and "stop the workers" in done.stderr
    assert _declares_as(own_vhost, Queue.ORDERS.value, QueueType().work_arguments("orders"))


def _succeeded(message_ids: list[str]) -> int:
    with session_scope() as s:
        return s.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.message_id.in_(message_ids), LedgerEntry.state == "succeeded")
        )


def test_workers_on_quorum_queues_behind_a_down_node_run_jobs_and_park_a_crash_poison(
    own_vhost, start_worker, tmp_path
):
    # Given a node list whose first node refuses connections, and quorum queues
    nodes = f"{DEAD_NODE}{own_vhost.rsplit('/', 1)[1]};{own_vhost}"
    env = {"SHOPJOBS_AMQP_URL": nodes, "SHOPJOBS_QUEUE_TYPE": "quorum"}
    start_worker("actors", "tests.support.faulty_actors", processes=2, threads=4, env=env)
    assert not _declares_as(own_vhost, "tests", {})  # the workers declared quorum queues

    # When 300 ordinary messages and one that kills its worker are published
    from tests.support.faulty_actors import kills_its_worker, noop

    normal = [noop.message(n) for n in range(300)]
    culprit = kills_its_worker.message(str(tmp_path / "runs"))
    publisher = Publisher(nodes, lambda q: None)
    batch = normal[:150] + [culprit] + normal[150:]
    assert len(publisher.publish([(m.message_id, "tests", m.encode(), None) for m in batch])) == 301
    publisher.close()

    # Then every ordinary job succeeds and the culprit is parked, none beside it
    ids = [m.message_id for m in normal]
    wait_until(lambda: _succeeded(ids) == 300, timeout=120, what="300 jobs on quorum queues")

    def parked() -> list[tuple[str, str]]:
        with session_scope() as s:
            return [(d.message_id, d.reason) for d in s.scalars(select(DeadLetter))]

    assert wait_until(parked, timeout=90, what="the crash poison parked") == [
        (culprit.message_id, "crashed_worker")
    ]


def test_the_boot_check_leaves_no_idle_connection_behind(own_vhost):
    # Given a broker with declared queues, as a worker process has at boot
    broker = _broker(own_vhost, QueueType())
    broker.declare_queue("orders")
    try:
        # When QueueCheck declares them in the main thread before the workers start
        QueueCheck().before_worker_boot(broker, None)
        # Then the main thread's connection is closed again: nothing services it after boot, so
        # RabbitMQ would drop it for missed heartbeats and closing it at shutdown would log
        # 3 ERROR lines per process (connection reset by peer)
        assert broker.connections == set()
        assert _declares_as(own_vhost, "orders", QueueType().work_arguments("orders"))
    finally:
        broker.close()
