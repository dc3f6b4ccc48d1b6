"""The pieces of lost-job detection that need no services: what a consumer reports as held,
which refusals of a passive declare mean "no such queue", and which jobs a re-drive may touch."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pika.exceptions
import pytest

from jobcore import queue_depth, routing
from jobcore.acks import LedgerAckedConsumer
from jobcore.worker_registry import held_ids_by
from shop.orders import redrive
from shop.routes import build_routes
from shop.settings import Settings


def _consumer(ids: dict[int, str], unsettled: set[int]) -> LedgerAckedConsumer:
    consumer = object.__new__(LedgerAckedConsumer)
    consumer._message_ids = ids
    consumer.known_tags = unsettled
    return consumer


def test_a_consumer_reports_the_ids_of_the_deliveries_it_has_not_settled():
    consumer = _consumer({1: "a", 2: "b", 3: "c"}, {2, 3, 9})  # 1 acked; 9 malformed, no id
    assert sorted(consumer.held_message_ids()) == ["b", "c"]


def test_a_worker_reports_the_held_ids_of_all_its_consumers_delayed_ones_too():
    worker = SimpleNamespace(
        consumers={
            "orders": SimpleNamespace(consumer=_consumer({1: "a", 2: "b"}, {1, 2})),
            "orders.DQ": SimpleNamespace(consumer=_consumer({5: "d"}, {5})),
            "media": SimpleNamespace(consumer=None),  # restarting
        }
    )
    assert held_ids_by(worker) == ["a", "b", "d"]


class _Channel:
    def __init__(self, code: int) -> None:
        self.code = code

    def queue_declare(self, name: str, passive: bool) -> Any:
        if name == "there":
            return SimpleNamespace(method=SimpleNamespace(message_count=3))
        raise pika.exceptions.ChannelClosedByBroker(self.code, "refused")

    def close(self) -> None:
        pass


class _Connection:
    def __init__(self, code: int) -> None:
        self.code = code

    def channel(self) -> _Channel:
        return _Channel(self.code)

    def close(self) -> None:
        pass


def test_only_a_404_means_a_queue_is_not_declared(monkeypatch):
    monkeypatch.setattr(queue_depth.amqp, "connect", lambda *a, **k: _Connection(404))
    assert queue_depth.message_counts("amqp://x", ["there", "gone"]) == {"there": 3}
    assert queue_depth.ready("amqp://x", ["gone"]) == {"gone": 0}


@pytest.mark.parametrize("code", [403, 405, 406])
def test_any_other_refusal_raises_so_nothing_is_called_lost_on_a_guess(monkeypatch, code):
    monkeypatch.setattr(queue_depth.amqp, "connect", lambda *a, **k: _Connection(code))
    with pytest.raises(pika.exceptions.ChannelClosedByBroker):
        queue_depth.ready("amqp://x", ["gone"])


def test_every_actor_a_redrive_sends_or_closes_is_deduped():
    routes = build_routes(Settings.from_env({}))
    assert redrive.REDRIVABLE >= {redrive.COMPENSATE, *redrive.NEXT_STEP.values()}
    assert {a: routes[a].options.get("dedupe") for a in redrive.REDRIVABLE} == dict.fromkeys(
        redrive.REDRIVABLE, True
    )


def test_a_lost_job_of_another_actor_or_of_a_route_without_dedupe_is_not_redrivable(monkeypatch):
    routes = build_routes(Settings.from_env({}))
    monkeypatch.setattr(routing, "_installed", routes)
    assert redrive.redrivable("orders.reserve_inventory")
    assert not redrive.redrivable("email.send_order_confirmation_email")
    undeduped = routing.Routes(
        [routing.Route("orders.reserve_inventory", "orders", {"max_retries": 5})]
    )
    monkeypatch.setattr(routing, "_installed", undeduped)
    assert not redrive.redrivable("orders.reserve_inventory")
