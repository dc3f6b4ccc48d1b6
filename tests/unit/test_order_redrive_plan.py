"""What a re-drive sends for a stranded order, and what a worker reports as held: no services."""

from __future__ import annotations

from types import SimpleNamespace

from jobcore.ledger.lost import OpenJob, stranded
from jobcore.worker_registry import held_by
from shop.orders import redrive
from shop.orders.pipeline import NEXT_STEP, STEPS, order_pipeline
from shop.orders.stranded import UNSETTLED


def _job(lost: bool, actor: str = "orders.reserve_inventory") -> OpenJob:
    return OpenJob(1, f"m-{actor}-{lost}", actor, "orders", "enqueued", 700.0, None, lost)


def test_every_unsettled_status_has_a_next_step_in_pipeline_order():
    assert tuple(NEXT_STEP) == UNSETTLED
    assert tuple(NEXT_STEP.values()) == STEPS


def test_a_pipeline_from_a_later_step_hands_on_to_the_rest_of_the_steps():
    import actors  # noqa: F401  (declares the actors the pipeline names)

    messages = order_pipeline(7, "orders.send_to_warehouse").messages
    assert [m.actor_name for m in messages] == [
        "orders.send_to_warehouse",
        "orders.notify_customer",
    ]
    assert messages[0].options["pipe_target"]["actor_name"] == "orders.notify_customer"
    assert all(m.args == (7,) and m.options["pipe_ignore"] for m in messages)


def test_a_lost_compensation_is_sent_again_instead_of_the_next_step():
    assert redrive._next_step("paid", ["orders.reserve_inventory"]) == "orders.reserve_inventory"
    assert redrive._next_step("paid", ["orders.compensate_order"]) == "orders.compensate_order"
    assert redrive._next_step("reserved", ["orders.cancel_order_async"]) == redrive.COMPENSATE


def test_the_compensation_keeps_its_reason_when_the_ledger_kept_it_whole():
    kept = {
        "order_id": 3,
        "reason": "orders.reserve_inventory failed: OutOfStock",
        "failed_step": "x",
    }
    assert redrive._compensation_args(3, [kept]) == (3, kept["reason"], "x")
    truncated = {"truncated": True, "bytes": 4000, "preview": "..."}
    assert redrive._compensation_args(3, [truncated]) == (
        3,
        "re-driven: its compensation was lost",
        "",
    )


def test_an_order_is_stranded_only_when_every_open_job_is_lost():
    assert stranded([_job(True)])
    assert stranded([_job(True), _job(True, "orders.compensate_order")])
    assert not stranded([_job(True), _job(False, "orders.compensate_order")])
    assert not stranded([])


def test_a_worker_reports_what_its_consumers_hold_with_delayed_messages_under_their_queue():
    def thread(tags: set[int] | None) -> SimpleNamespace:
        return SimpleNamespace(consumer=None if tags is None else SimpleNamespace(known_tags=tags))

    worker = SimpleNamespace(
        consumers={
            "orders": thread({1, 2}),
            "orders.DQ": thread({7}),
            "payments": thread(set()),
            "media": thread(None),  # restarting: no consumer right now
        }
    )
    assert held_by(worker) == {"orders": 3}
