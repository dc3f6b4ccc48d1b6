"""HookDispatch calls only the middleware that define a hook, in Dramatiq's order, with its errors."""

from __future__ import annotations

import traceback
from typing import Any

import pytest
from dramatiq import Middleware
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import MiddlewareError, SkipMessage

from jobcore.hooks import HookDispatch, overrides
from jobcore.metrics.definitions import MIDDLEWARE_ERRORS
from jobcore.metrics.failures import counts_failures


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
    hooked = [m for m, _, _ in broker._hooked("before_enqueue")]
    assert hooked == [broker.middleware[0], broker.middleware[2]]
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


@counts_failures
class CountedBroken(Middleware):
    """A middleware of ours: its failures are counted, with or without HookDispatch."""

    def __init__(self, frames: list[int]) -> None:
        self.frames = frames

    def before_enqueue(self, broker: Any, message: Any, delay: Any) -> None:
        self.frames.append(len(traceback.extract_stack()))
        raise RuntimeError("broken store")

    def after_enqueue(self, broker: Any, message: Any, delay: Any) -> None:
        raise MiddlewareError("refused after")

    def before_consumer_thread_shutdown(self, broker: Any, thread: Any) -> None:
        raise SkipMessage("control flow")

    def before_worker_thread_shutdown(self, broker: Any, thread: Any) -> None:
        raise MiddlewareError("refused before")


def _failures(hook: str) -> float:
    return MIDDLEWARE_ERRORS.labels("CountedBroken", hook)._value.get()


@pytest.mark.parametrize("broker_class", [DispatchingStub, StubBroker])
def test_a_counted_middlewares_failures_are_counted_once_by_either_broker(broker_class):
    # Given one of our middleware whose hooks fail (logged, refused, or skipping the message)
    frames: list[int] = []
    broker = broker_class(middleware=[CountedBroken(frames)])
    before = {h: _failures(h) for h in ("before_enqueue", "after_enqueue")}
    before_refused = _failures("before_worker_thread_shutdown")
    before_skip = _failures("before_consumer_thread_shutdown")

    # When each hook is emitted
    broker.emit_before("enqueue", None, None)
    broker.emit_after("enqueue", None, None)
    with pytest.raises(MiddlewareError):
        broker.emit_before("worker_thread_shutdown", None)
    with pytest.raises(SkipMessage):
        broker.emit_before("consumer_thread_shutdown", None)

    # Then every failure counts once, a MiddlewareError raised on; SkipMessage is not a failure
    assert _failures("before_enqueue") == before["before_enqueue"] + 1
    assert _failures("after_enqueue") == before["after_enqueue"] + 1
    assert _failures("before_worker_thread_shutdown") == before_refused + 1
    assert _failures("before_consumer_thread_shutdown") == before_skip


def test_the_dispatch_calls_a_counted_hook_without_its_wrapper_frame():
    frames: list[int] = []
    DispatchingStub(middleware=[CountedBroken(frames)]).emit_before("enqueue", None, None)
    StubBroker(middleware=[CountedBroken(frames)]).emit_before("enqueue", None, None)

    # HookDispatch's own emit_before is one frame, Dramatiq's the other: the wrapper is the
    # second frame Dramatiq's path has; ours calls the hook directly
    dispatched, plain = frames
    assert plain - dispatched == 1


class JobHooks(Middleware):
    """Per-message hooks, the dispatch's fixed-argument paths."""

    def __init__(self, name: str, calls: list[Any], fail: BaseException | None = None) -> None:
        self.name, self.calls, self.fail = name, calls, fail

    def before_process_message(self, broker: Any, message: Any) -> None:
        self.calls.append(("before", self.name, message))
        if self.fail is not None:
            raise self.fail

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        self.calls.append(("after", self.name, message, result, exception))
        if self.fail is not None:
            raise self.fail

    def after_skip_message(self, broker: Any, message: Any) -> None:
        self.calls.append(("skip", self.name, message))
        if self.fail is not None:
            raise self.fail


def test_per_message_hooks_get_the_message_and_the_outcome_as_dramatiq_passes_them():
    calls: list[Any] = []
    broker = DispatchingStub(middleware=[JobHooks("a", calls), JobHooks("b", calls)])
    error = ValueError("boom")

    broker.emit_before("process_message", "m1")
    broker.emit_after("process_message", "m1", result=42)
    broker.emit_after("process_message", "m2", exception=error)
    broker.emit_after("skip_message", "m3")

    assert calls == [
        ("before", "a", "m1"),
        ("before", "b", "m1"),
        ("after", "b", "m1", 42, None),
        ("after", "a", "m1", 42, None),
        ("after", "b", "m2", None, error),
        ("after", "a", "m2", None, error),
        ("skip", "b", "m3"),
        ("skip", "a", "m3"),
    ]


def test_per_message_hook_failures_are_handled_as_on_every_other_signal():
    calls: list[Any] = []
    # a failing after-hook is logged and the others still run
    broker = DispatchingStub(middleware=[JobHooks("a", calls), JobHooks("x", [], RuntimeError())])
    broker.emit_after("process_message", "m", result=None)
    broker.emit_after("skip_message", "m")
    broker.emit_before("process_message", "m")  # logged; the next hook (none here) would run
    assert [c[0] for c in calls] == ["after", "skip", "before"]

    # SkipMessage and MiddlewareError before a job stop the hooks below and reach Dramatiq
    for stop in (SkipMessage("duplicate"), MiddlewareError("refused")):
        below: list[Any] = []
        stopping = DispatchingStub(middleware=[JobHooks("s", [], stop), JobHooks("b", below)])
        with pytest.raises(type(stop)):
            stopping.emit_before("process_message", "m")
        assert below == []


def test_a_hook_switched_off_on_the_instance_is_not_dispatched():
    import types

    calls: list[Any] = []
    off = JobHooks("off", calls)
    off.after_process_message = types.MethodType(  # type: ignore[method-assign]
        Middleware.after_process_message, off
    )
    broker = DispatchingStub(middleware=[off])
    broker.emit_after("process_message", "m", result=1)

    assert not overrides(off, "after_process_message") and calls == []
    assert overrides(off, "before_process_message")


def test_the_shop_brokers_results_middleware_has_no_per_job_hooks():
    from dramatiq.results import Results

    from middleware.ledger_results import ledger_results

    results = ledger_results()
    assert type(results) is Results  # Dramatiq's worker looks for this exact type
    for hook in ("after_process_message", "after_skip_message", "after_nack"):
        assert not overrides(results, hook)
