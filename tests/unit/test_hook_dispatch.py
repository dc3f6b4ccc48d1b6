"""HookDispatch calls only the middleware that define a hook, in Dramatiq's order, with its errors."""

from __future__ import annotations

from typing import Any

import pytest
from dramatiq import Middleware
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import MiddlewareError

from jobcore.hooks import HookDispatch, overrides


class DispatchingStub(HookDispatch, StubBroker):
    pass


class Recorder(Middleware):
    def __init__(self, name: str, calls: list[str]) -> None:
        self.name, self.calls = name, calls

    def before_enqueue(self, broker: Any, message: Any, delay: Any) -> None:
        self.calls.append(f"before {self.name}")

    def after_enqueue(self, broker: Any, message: Any, delay: Any) -> None:
        self.calls.append(f"after {self.name}")


class Silent(Middleware):
    """Defines no hook: never called."""


class Broken(Middleware):
    def before_enqueue(self, broker: Any, message: Any, delay: Any) -> None:
        raise RuntimeError("broken store")


class Refusing(Middleware):
    def before_enqueue(self, broker: Any, message: Any, delay: Any) -> None:
        raise MiddlewareError("refused")


def test_only_the_middleware_that_define_a_hook_are_called_in_dramatiqs_order():
    # Given two recording middleware around one that defines nothing
    calls: list[str] = []
    broker = DispatchingStub(middleware=[Recorder("a", calls), Silent(), Recorder("b", calls)])

    # When a hook pair is emitted
    broker.emit_before("enqueue", None, None)
    broker.emit_after("enqueue", None, None)

    # Then before_* runs top to bottom and after_* bottom to top, skipping the silent one
    assert calls == ["before a", "before b", "after b", "after a"]
    assert broker._hooked("before_enqueue", False) == (broker.middleware[0], broker.middleware[2])
    assert not overrides(broker.middleware[1], "before_enqueue")


def test_a_middleware_added_later_is_called_too():
    calls: list[str] = []
    broker = DispatchingStub(middleware=[Recorder("a", calls)])
    broker.emit_before("enqueue", None, None)

    broker.add_middleware(Recorder("late", calls))
    broker.emit_before("enqueue", None, None)

    assert calls == ["before a", "before a", "before late"]


def test_a_failing_hook_is_logged_and_the_others_run_but_a_middleware_error_stops():
    calls: list[str] = []
    broker = DispatchingStub(middleware=[Broken(), Recorder("a", calls)])
    broker.emit_before("enqueue", None, None)
    assert calls == ["before a"]

    refusing = DispatchingStub(middleware=[Refusing(), Recorder("b", calls)])
    with pytest.raises(MiddlewareError):
        refusing.emit_before("enqueue", None, None)
    assert calls == ["before a"]


def test_a_hook_set_on_the_instance_counts_as_defined():
    silent = Silent()
    silent.before_enqueue = lambda *a, **k: None  # type: ignore[method-assign]
    assert overrides(silent, "before_enqueue")


def test_the_shop_broker_dispatches_this_way():
    import broker

    assert issubclass(broker.ShopRabbitmqBroker, HookDispatch)
