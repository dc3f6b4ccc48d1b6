"""The routing table as a mapping, and the options of an actor nobody declared or routed."""

from __future__ import annotations

from dramatiq.brokers.stub import StubBroker

from jobcore import routing


def test_membership_of_an_unrouted_name_is_false_not_an_error():
    routes = routing.Routes([routing.Route("orders.reserve", "orders", {"max_retries": 3})])
    assert "orders.reserve" in routes and "bench.noop" not in routes
    assert routes.get("bench.noop") is None  # Mapping.get, the same path as `in`


def test_options_of_an_actor_neither_declared_nor_routed_are_empty(monkeypatch):
    # a message for an actor this process does not know (a service sending by hand): it is
    # sent as Dramatiq would, with no options, instead of failing on the lookup
    monkeypatch.setattr(routing, "_installed", routing.Routes([]))
    assert routing.actor_options("bench.noop", StubBroker()) == {}
