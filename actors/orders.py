"""Order actors: the pipeline's steps, compensation, cancellation and tracking."""

from __future__ import annotations

import dramatiq

import broker as shop_broker
from actors.retry_after import honour_retry_after
from jobcore.errors import PermanentError
from shop.queues import Queue
from shop.catalog import inventory
from shop.orders import orders
from jobcore.validate import positive_id, text
from shop.orders.pipeline import order_pipeline

STEP = {"queue_name": Queue.ORDERS.value, "throws": (PermanentError,), "dedupe": True}
COMPENSATE = "orders.compensate_order"


@dramatiq.actor(actor_name="orders.process_order_async", max_retries=3, **STEP)
def process_order_async(order_id: int) -> None:
    """Start the order's pipeline (payment -> inventory -> warehouse -> notification)."""
    order = orders.pipeline_start(positive_id(order_id, "order_id"))
    if order:
        order_pipeline(order_id).run()


@dramatiq.actor(actor_name="orders.reserve_inventory", max_retries=5, compensate_with=COMPENSATE, **STEP)
def reserve_inventory(order_id: int) -> None:
    inventory.reserve_order(positive_id(order_id, "order_id"))


@dramatiq.actor(actor_name="orders.send_to_warehouse", max_retries=6, compensate_with=COMPENSATE, **STEP)
@honour_retry_after
def send_to_warehouse(order_id: int) -> None:
    orders.send_to_warehouse(positive_id(order_id, "order_id"))


@dramatiq.actor(actor_name="orders.notify_customer", max_retries=5, **STEP)
def notify_customer(order_id: int) -> None:
    orders.complete(positive_id(order_id, "order_id"))


@dramatiq.actor(actor_name="orders.compensate_order", max_retries=8, **STEP)
@honour_retry_after
def compensate_order(order_id: int, reason: str, failed_step: str = "") -> None:
    """Undo a failed pipeline in reverse: release stock, refund or void, tell the customer."""
    orders.compensate(positive_id(order_id, "order_id"), text(reason, "reason"))


@dramatiq.actor(actor_name="orders.cancel_order_async", max_retries=8, **STEP)
@honour_retry_after
def cancel_order_async(order_id: int, reason: str) -> None:
    orders.compensate(positive_id(order_id, "order_id"), text(reason, "reason"))


@dramatiq.actor(actor_name="orders.update_order_tracking", max_retries=5, **STEP)
@honour_retry_after
def update_order_tracking(order_id: int, tracking_number: str) -> None:
    """Record tracking, notify, and check delivery later."""
    status = orders.record_tracking(positive_id(order_id, "order_id"), text(tracking_number, "tracking_number", max_len=64))
    if status != "delivered":
        check_delivery.send_with_options(args=(order_id,), delay=shop_broker.settings.delivery_check_delay_s * 1000)


@dramatiq.actor(actor_name="orders.check_delivery", max_retries=5, **STEP)
@honour_retry_after
def check_delivery(order_id: int) -> None:
    orders.check_delivery(positive_id(order_id, "order_id"))
