"""jobcore.sends: which sends are held in PostgreSQL, and the stack that commits them."""

from __future__ import annotations

import base64

from dramatiq import Message
from dramatiq.brokers.stub import StubBroker

from broker import build_middleware
from jobcore import sends
from jobcore.ledger.writer import LedgerWriter
from shop.settings import Settings


def _message(**options: object) -> Message[object]:
    return Message(
        queue_name="orders",
        actor_name="orders.check_delivery",
        args=(7,),
        kwargs={},
        options=dict(options),
    )


def test_a_delay_over_the_threshold_is_held_and_a_shorter_one_keeps_the_delay_queue():
    broker = StubBroker()
    held = sends.make_send(broker, _message(), 21_600_000, 30_000)
    short = sends.make_send(broker, _message(), 5_000, 30_000)
    now = sends.make_send(broker, _message(), None, 30_000)
    assert (held.hold_ms, held.delay_ms) == (21_600_000, None)
    assert (short.hold_ms, short.delay_ms) == (0, 5_000)
    assert (now.hold_ms, now.delay_ms) == (0, None)
    assert held.as_json()["eta_ms"] == 21_600_000 and now.as_json()["eta_ms"] is None


def test_a_held_send_is_published_to_its_own_queue_without_a_stale_eta_and_marked_recorded():
    send = sends.make_send(
        StubBroker(), _message(eta=123).copy(queue_name="orders.DQ"), 60_000, 30_000
    )
    body = Message.decode(send.body)
    assert send.queue == body.queue_name == "orders"
    assert "eta" not in body.options and body.options[sends.LEDGER_RECORDED_OPTION] is True
    assert base64.b64decode(send.as_json()["body"]) == send.body


def test_only_a_buffering_job_takes_the_final_change_over():
    class Proxy:
        pass

    message, change = Proxy(), object()
    assert sends.hand_over(message, change) is False
    setattr(message, sends.FINAL_CHANGE_ATTRIBUTE, None)
    assert sends.hand_over(message, change) is True
    assert getattr(message, sends.FINAL_CHANGE_ATTRIBUTE) is change


def test_a_thread_buffers_only_between_begin_and_end_and_bypass_suspends_it():
    assert not sends.buffering()
    sends.begin()
    try:
        assert sends.buffering()
        with sends.bypass():
            assert not sends.buffering()
    finally:
        assert sends.end() == []
    assert not sends.buffering()


def test_durable_sends_sits_on_top_so_its_after_hooks_see_every_send():
    stack = build_middleware(Settings.from_env({}), LedgerWriter(lambda: None), durable_sends=True)
    names = [type(m).__name__ for m in stack]
    assert names[:4] == ["LogContext", "DbSessions", "DurableSends", "OutboxRelay"]
    after_order = names[::-1]  # after_* hooks run bottom to top
    for sender in ("Retries", "Compensation", "Pipelines", "Callbacks", "JobStatus"):
        assert after_order.index(sender) < after_order.index("DurableSends")
