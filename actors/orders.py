"""Order actors: the pipeline's steps, compensation, cancellation and tracking."""

from __future__ import annotations

from actors.retry_after import honour_retry_after
from broker import routes, settings
from jobcore.validate import positive_id, text
from shop.catalog import inventory
from shop.orders import orders
from shop.orders.pipeline import order_pipeline


@routes.actor("orders.process_order_async")
def process_order_async(order_id: int) -> None:
    """Start the order's pipeline (payment -> inventory -> warehouse -> notification)."""
    order = orders.pipeline_start(positive_id(order_id, "order_id"))
    if order:
        order_pipeline(order_id).run()


@routes.actor("orders.reserve_inventory")
def reserve_inventory(order_id: int) -> None:
    inventory.reserve_order(positive_id(order_id, "order_id"))


@routes.actor("orders.send_to_warehouse")
@honour_retry_after
def send_to_warehouse(order_id: int) -> None:
    orders.send_to_warehouse(positive_id(order_id, "order_id"))


@routes.actor("orders.notify_customer")
def notify_customer(order_id: int) -> None:
    orders.complete(positive_id(order_id, "order_id"))


@routes.actor("orders.compensate_order")
@honour_retry_after
def compensate_order(order_id: int, reason: str, failed_step: str = "") -> None:
    """Undo a failed pipeline in reverse: release stock, refund or void, tell the customer."""
    orders.compensate(positive_id(order_id, "order_id"), text(reason, "reason"))


@routes.actor("orders.cancel_order_async")
@honour_retry_after
def cancel_order_async(order_id: int, reason: str) -> None:
    orders.compensate(positive_id(order_id, "order_id"), text(reason, "reason"))


@routes.actor("orders.update_order_tracking")
@honour_retry_after
def update_order_tracking(order_id: int, tracking_number: str) -> None:
    """Record tracking, notify, and check delivery later."""
    status = orders.record_tracking(
        positive_id(order_id, "order_id"), text(tracking_number, "tracking_number", max_len=64)
    )
    if status != "delivered":
        check_delivery.send_with_options(
            args=(order_id,), delay=settings.delivery_check_delay_s * 1000
        )


@routes.actor("orders.check_delivery")
@honour_retry_after
def check_delivery(order_id: int) -> None:
    orders.check_delivery(positive_id(order_id, "order_id"))
