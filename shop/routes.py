"""The shop's routing table: every actor's name, queue and options, written once.

Actors are declared from it (``@routes.actor("orders.reserve_inventory")`` in ``actors/``) and
services send by name through it (``jobcore.outbox.enqueue(session, "orders.check_delivery", ...)``),
so the domain never imports ``actors``. Names are stable (``domain.verb``): renaming a function
orphans no queued message. Options that come from settings are read here, when the entry point
builds the table, never in a decorator at import time. ``time_limit`` is in milliseconds.
"""

from __future__ import annotations

from jobcore.errors import PermanentError
from jobcore.routing import ActorOptions, Route, Routes
from shop.queues import Queue
from shop.settings import Settings

PERMANENT = (PermanentError,)
# the longest a job may run: 25 min ends well before RabbitMQ's default consumer_timeout (30
# min), past which the broker closes a running job's channel and redelivers it (TimeLimitCheck)
LONG_JOB_MS = 25 * 60 * 1000


def build_routes(settings: Settings) -> Routes:
    """The table for ``settings`` (retry limits of deliveries come from them)."""
    # a notification's delivery, by e-mail or SMS: a second copy is skipped and counted, not
    # run to find its row settled (T12: metrics counted each such run as a success)
    delivery: ActorOptions = {
        "throws": PERMANENT,
        "max_retries": settings.notify_max_retries,
        "on_retry_exhausted": "notifications.delivery_gave_up",
        "dedupe": True,
    }
    return Routes(
        [
            # backups
            Route(
                "backups.apply_retention",
                Queue.MAINTENANCE,
                {"throws": PERMANENT, "max_retries": 3, "time_limit": LONG_JOB_MS},
            ),
            Route(
                "backups.daily",
                Queue.MAINTENANCE,
                {"throws": PERMANENT, "max_retries": 3, "time_limit": LONG_JOB_MS},
            ),
            Route(
                "backups.export_customer_data",
                Queue.MAINTENANCE,
                {"throws": PERMANENT, "max_retries": 3, "time_limit": LONG_JOB_MS},
            ),
            Route(
                "backups.snapshot",
                Queue.MAINTENANCE,
                {"throws": PERMANENT, "max_retries": 3, "time_limit": LONG_JOB_MS},
            ),
            Route(
                "backups.verify",
                Queue.MAINTENANCE,
                {"throws": PERMANENT, "max_retries": 3, "time_limit": LONG_JOB_MS},
            ),
            Route(
                "backups.weekly",
                Queue.MAINTENANCE,
                {"throws": PERMANENT, "max_retries": 3, "time_limit": LONG_JOB_MS},
            ),
            # email
            Route(
                "email.send_email",
                Queue.NOTIFICATIONS,
                ActorOptions(**delivery),
            ),
            Route(
                "email.send_email_async",
                Queue.NOTIFICATIONS,
                {
                    "throws": PERMANENT,
                    "max_retries": settings.notify_max_retries,
                    "on_retry_exhausted": "email.send_email_async_gave_up",
                },
            ),
            Route("email.send_email_async_gave_up", Queue.NOTIFICATIONS, {"max_retries": 5}),
            Route(
                "email.send_order_confirmation_email",
                Queue.NOTIFICATIONS,
                {"throws": PERMANENT, "max_retries": 5},
            ),
            Route(
                "email.send_payment_failed",
                Queue.NOTIFICATIONS,
                {"throws": PERMANENT, "max_retries": 5},
            ),
            Route(
                "email.send_shipping_notification_email",
                Queue.NOTIFICATIONS,
                {"throws": PERMANENT, "max_retries": 5},
            ),
            Route(
                "email.send_subscription_renewal_reminder",
                Queue.NOTIFICATIONS,
                {"throws": PERMANENT, "max_retries": 5},
            ),
            Route(
                "email.send_templated_email",
                Queue.NOTIFICATIONS,
                {"throws": PERMANENT, "max_retries": 5},
            ),
            Route(
                "email.send_welcome_email",
                Queue.NOTIFICATIONS,
                {"throws": PERMANENT, "max_retries": 5},
            ),
            # health
            Route("health.check", Queue.MAINTENANCE, {"max_retries": 0, "time_limit": 60_000}),
            # inventory
            Route(
                "inventory.check_low_stock_alerts",
                Queue.INVENTORY,
                {"max_retries": 3, "time_limit": 120_000},
            ),
            Route(
                "inventory.sync_inventory_levels",
                Queue.REPORTS,
                {"throws": PERMANENT, "max_retries": 5, "time_limit": 900_000},
            ),
            Route(
                "inventory.update_product_availability",
                Queue.INVENTORY,
                {"throws": PERMANENT, "max_retries": 2},
            ),
            # jobs
            Route("jobs.job_retries_exhausted", Queue.REPORTS, {"max_retries": 5}),
            Route(
                "jobs.process_job",
                Queue.REPORTS,
                {
                    "throws": PERMANENT,
                    "max_retries": 3,
                    "on_retry_exhausted": "jobs.job_retries_exhausted",
                    "time_limit": LONG_JOB_MS,
                },
            ),
            # maintenance
            Route(
                "maintenance.cleanup_abandoned_sessions",
                Queue.MAINTENANCE,
                {"throws": PERMANENT, "max_retries": 3},
            ),
            Route(
                "maintenance.cleanup_expired_carts",
                Queue.MAINTENANCE,
                {"throws": PERMANENT, "max_retries": 3},
            ),
            Route(
                "maintenance.cleanup_expired_sessions",
                Queue.MAINTENANCE,
                {"throws": PERMANENT, "max_retries": 3},
            ),
            Route(
                "maintenance.cleanup_expired_tokens",
                Queue.MAINTENANCE,
                {"throws": PERMANENT, "max_retries": 3},
            ),
            Route(
                "maintenance.cleanup_old_audit_logs",
                Queue.MAINTENANCE,
                {"throws": PERMANENT, "max_retries": 3},
            ),
            Route(
                "maintenance.prune_job_ledger",
                Queue.MAINTENANCE,
                {"throws": PERMANENT, "max_retries": 3},
            ),
            Route(
                "maintenance.prune_job_ledger_by_policy",
                Queue.MAINTENANCE,
                {"throws": PERMANENT, "max_retries": 3},
            ),
            Route("maintenance.relay_outbox", Queue.MAINTENANCE, {"max_retries": 3}),
            Route(
                "maintenance.redrive_stranded_orders",
                Queue.MAINTENANCE,
                {"throws": PERMANENT, "max_retries": 2},
            ),
            # media
            Route(
                "media.generate_image_variants",
                Queue.MEDIA,
                {"throws": PERMANENT, "max_retries": 4, "time_limit": 300_000},
            ),
            Route(
                "media.process_product_images",
                Queue.MEDIA,
                {"throws": PERMANENT, "max_retries": 4, "time_limit": 300_000},
            ),
            # notifications
            Route("notifications.birthday_greetings", Queue.NOTIFICATIONS, {"max_retries": 3}),
            Route(
                "notifications.campaign_chunk",
                Queue.NOTIFICATIONS,
                {"throws": PERMANENT, "max_retries": 5},
            ),
            Route(
                "notifications.campaign_completed",
                Queue.NOTIFICATIONS,
                {"throws": PERMANENT, "max_retries": 5},
            ),
            Route(
                "notifications.cleanup_notifications",
                Queue.NOTIFICATIONS,
                {"throws": PERMANENT, "max_retries": 3},
            ),
            Route("notifications.delivery_gave_up", Queue.NOTIFICATIONS, {"max_retries": 5}),
            Route("notifications.payment_reminders", Queue.NOTIFICATIONS, {"max_retries": 3}),
            Route("notifications.process_due", Queue.NOTIFICATIONS, {"max_retries": 3}),
            Route(
                "notifications.send_bulk",
                Queue.NOTIFICATIONS,
                {"throws": PERMANENT, "max_retries": 3},
            ),
            Route(
                "notifications.send_sms",
                Queue.NOTIFICATIONS,
                ActorOptions(**delivery),
            ),
            Route(
                "notifications.send_templated_sms",
                Queue.NOTIFICATIONS,
                {"throws": PERMANENT, "max_retries": 5},
            ),
            # orders
            Route(
                "orders.cancel_order_async",
                Queue.ORDERS,
                {"max_retries": 8, "throws": PERMANENT, "dedupe": True},
            ),
            Route(
                "orders.check_delivery",
                Queue.ORDERS,
                {"max_retries": 5, "throws": PERMANENT, "dedupe": True},
            ),
            Route(
                "orders.compensate_order",
                Queue.ORDERS,
                {"max_retries": 8, "throws": PERMANENT, "dedupe": True},
            ),
            Route(
                "orders.notify_customer",
                Queue.ORDERS,
                {"max_retries": 5, "throws": PERMANENT, "dedupe": True},
            ),
            Route(
                "orders.process_order_async",
                Queue.ORDERS,
                {"max_retries": 3, "throws": PERMANENT, "dedupe": True},
            ),
            Route(
                "orders.reserve_inventory",
                Queue.ORDERS,
                {
                    "max_retries": 5,
                    "compensate_with": "orders.compensate_order",
                    "throws": PERMANENT,
                    "dedupe": True,
                },
            ),
            Route(
                "orders.send_to_warehouse",
                Queue.ORDERS,
                {
                    "max_retries": 6,
                    "compensate_with": "orders.compensate_order",
                    "throws": PERMANENT,
                    "dedupe": True,
                },
            ),
            Route(
                "orders.update_order_tracking",
                Queue.ORDERS,
                {"max_retries": 5, "throws": PERMANENT, "dedupe": True},
            ),
            # payments
            Route(
                "payments.handle_payment_webhook",
                Queue.PAYMENTS,
                {"max_retries": 6, "throws": PERMANENT, "dedupe": True},
            ),
            Route(
                "payments.process_refund_async",
                Queue.PAYMENTS,
                {"max_retries": 6, "throws": PERMANENT, "dedupe": True},
            ),
            Route(
                "payments.validate_payment",
                Queue.PAYMENTS,
                {
                    "max_retries": 6,
                    "compensate_with": "orders.compensate_order",
                    "throws": PERMANENT,
                    "dedupe": True,
                },
            ),
            # prices
            Route(
                "prices.poll_price_feed",
                Queue.REPORTS,
                {"throws": PERMANENT, "max_retries": 0, "time_limit": 120_000},
            ),
            # reports
            Route(
                "reports.export_data_async",
                Queue.REPORTS,
                {
                    "throws": PERMANENT,
                    "max_retries": 3,
                    "on_retry_exhausted": "jobs.job_retries_exhausted",
                    "time_limit": LONG_JOB_MS,
                },
            ),
            Route(
                "reports.generate_daily_sales_report",
                Queue.REPORTS,
                {"throws": PERMANENT, "max_retries": 5, "time_limit": 600_000},
            ),
            Route(
                "reports.update_product_rankings",
                Queue.REPORTS,
                {"max_retries": 3, "time_limit": 600_000},
            ),
            # subscriptions
            Route(
                "subscriptions.process_due",
                Queue.MAINTENANCE,
                {"throws": PERMANENT, "max_retries": 5},
            ),
            Route(
                "subscriptions.process_single",
                Queue.ORDERS,
                {"throws": PERMANENT, "max_retries": 8},
            ),
            Route(
                "subscriptions.send_renewal_reminders",
                Queue.MAINTENANCE,
                {"throws": PERMANENT, "max_retries": 5},
            ),
        ]
    )
