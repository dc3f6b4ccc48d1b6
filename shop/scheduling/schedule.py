"""The shop's periodic jobs, in one place. The issue that adds an actor adds its entry here.

Names are stable (they are part of every fire's message id). Cron entries run on the wall
clock of their ``tz``; frequent ones are intervals, which DST does not touch.

Still to come, with the issues that add their actors (reference documents):
- daily sales report ........... cron "0 6 * * *"   Europe/Berlin, catch_up (grace 12 h)
- low-stock alerts ............. cron "0 * * * *"   Europe/Berlin, skip
- inventory sync with warehouse  every_s=900, skip
- price feed ................... cron "*/5 9-17 * * mon-fri" Europe/Berlin (market hours), skip
- subscriptions renewal ........ cron "0 0 * * *"   Europe/Berlin, catch_up (grace 6 h)
- expired carts cleanup ........ cron "0 2 * * *"   Europe/Berlin, catch_up (grace 6 h)
- expired tokens/sessions ...... cron "0 3 * * *"   Europe/Berlin, catch_up (grace 6 h)
- scheduled notifications ...... every_s=60, catch_up (grace 10 min)
- payment reminders ............ cron "0 9 * * *"   Europe/Berlin, catch_up (grace 3 h)
"""

from __future__ import annotations

from shop.scheduling.entries import Entry

ACTOR_MODULES = ("actors",)

ENTRIES: list[Entry] = [
    Entry(
        name="relay-outbox",
        actor="maintenance.relay_outbox",
        every_s=30,
        tz="Europe/Berlin",
        misfire="skip",  # the next run, 30 s later, relays the same rows
        description="publish outbox rows whose after-commit publish was missed",
    ),
    Entry(
        name="prune-job-ledger",
        actor="maintenance.prune_job_ledger_by_policy",
        cron="0 4 * * *",
        tz="Europe/Berlin",
        misfire="catch_up",
        grace_s=3 * 3600,
        description="delete succeeded ledger rows after 14 days, failed ones after 60 (settings)",
    ),
    Entry(
        name="redrive-stranded-orders",
        actor="maintenance.redrive_stranded_orders",
        every_s=300,
        tz="Europe/Berlin",
        misfire="skip",  # the next run, 5 min later, finds the same orders
        description="send the next step of orders whose jobs were lost (a queue deleted or purged)",
    ),
    # --- subscriptions, cleanup, backups and health ([08]) ---
    *(
        Entry(
            name=name,
            actor=actor,
            cron=cron,
            tz="Europe/Berlin",
            misfire="catch_up",
            grace_s=grace_h * 3600,
            description=description,
        )
        for name, actor, cron, grace_h, description in (
            # renewals and reminders at local midnight: reminders are then 24 h ahead of a renewal
            (
                "subscriptions-renewal",
                "subscriptions.process_due",
                "0 0 * * *",
                6,
                "renew subscriptions due today",
            ),
            (
                "subscription-reminders",
                "subscriptions.send_renewal_reminders",
                "0 0 * * *",
                6,
                "remind customers whose subscription renews tomorrow",
            ),
            (
                "cleanup-expired-carts",
                "maintenance.cleanup_expired_carts",
                "0 2 * * *",
                6,
                "delete carts idle for 30 days, empty ones first",
            ),
            (
                "cleanup-expired-tokens",
                "maintenance.cleanup_expired_tokens",
                "0 3 * * *",
                6,
                "delete expired and long-used tokens",
            ),
            (
                "cleanup-expired-sessions",
                "maintenance.cleanup_expired_sessions",
                "10 3 * * *",
                6,
                "delete expired sessions",
            ),
            (
                "cleanup-abandoned-sessions",
                "maintenance.cleanup_abandoned_sessions",
                "20 3 * * *",
                6,
                "delete sessions idle for 14 days",
            ),
            (
                "cleanup-old-audit-logs",
                "maintenance.cleanup_old_audit_logs",
                "30 3 * * *",
                6,
                "delete audit rows older than 90 days",
            ),
            (
                "backup-daily",
                "backups.daily",
                "30 1 * * *",
                6,
                "daily backup, verified, retention applied",
            ),
            (
                "backup-weekly",
                "backups.weekly",
                "0 5 * * sun",
                24,
                "weekly backup, verified, retention applied",
            ),
        )
    ),
    Entry(
        name="health-check",
        actor="health.check",
        every_s=60,
        tz="Europe/Berlin",
        misfire="skip",
        description="probe every component; a late check is worthless, the next one comes in a minute",
    ),
    # --- notifications ([03]) ---
    Entry(
        name="notifications-due",
        actor="notifications.process_due",
        every_s=60,
        tz="Europe/Berlin",
        misfire="catch_up",
        grace_s=600,
        description="send scheduled notifications now due, re-queue lost deliveries, run recurring ones",
    ),
    Entry(
        name="payment-reminders",
        actor="notifications.payment_reminders",
        cron="0 9 * * *",
        tz="Europe/Berlin",
        misfire="catch_up",
        grace_s=3 * 3600,
        description="remind customers of unpaid orders, once a day per order",
    ),
    Entry(
        name="birthday-greetings",
        actor="notifications.birthday_greetings",
        cron="0 8 * * *",
        tz="Europe/Berlin",
        misfire="catch_up",
        grace_s=6 * 3600,
        description="birthday greetings, once per user per year",
    ),
    Entry(
        name="cleanup-notifications",
        actor="notifications.cleanup_notifications",
        cron="30 3 * * *",
        tz="Europe/Berlin",
        misfire="catch_up",
        grace_s=6 * 3600,
        description="delete settled notifications older than SHOPJOBS_NOTIFY_RETENTION_DAYS",
    ),
    # [07] catalog and inventory
    Entry(
        name="inventory-sync",
        actor="inventory.sync_inventory_levels",
        every_s=900,
        tz="Europe/Berlin",
        misfire="skip",  # the next pull, 15 min later, brings the same stock
        description="pull stock levels from the warehouse, apply them, report discrepancies",
    ),
    Entry(
        name="low-stock-alerts",
        actor="inventory.check_low_stock_alerts",
        cron="0 * * * *",
        tz="Europe/Berlin",
        misfire="skip",
        description="alert the administrators once per product per crossing under its threshold",
    ),
    Entry(
        name="daily-sales-report",
        actor="reports.generate_daily_sales_report",
        cron="0 6 * * *",
        tz="Europe/Berlin",
        misfire="catch_up",
        grace_s=12 * 3600,
        description="yesterday's revenue, orders, AOV, top products and refunds, e-mailed to admins",
    ),
    Entry(
        name="product-rankings",
        actor="reports.update_product_rankings",
        cron="30 * * * *",
        tz="Europe/Berlin",
        misfire="skip",
        description="rank products by views and purchases over the window; feature the best",
    ),
    Entry(
        name="price-feed",
        actor="prices.poll_price_feed",
        cron="*/5 9-17 * * mon-fri",
        tz="Europe/Berlin",
        misfire="skip",  # a late quote is worth less than the next one
        description="poll exchange rates from the sources in fallback order; alert when all fail",
    ),
]
