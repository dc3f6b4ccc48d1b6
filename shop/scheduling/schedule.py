"""The shop's periodic jobs, in one place. The issue that adds an actor adds its entry here.

Names are stable (they are part of every fire's message id). Cron entries run on the wall
clock of their ``tz``; frequent ones are intervals, which DST does not touch.

Still to come, with the issues that add their actors (reference documents):
- subscriptions renewal ........ cron "0 0 * * *"   Europe/Berlin, catch_up (grace 6 h)
- expired carts cleanup ........ cron "0 2 * * *"   Europe/Berlin, catch_up (grace 6 h)
- expired tokens/sessions ...... cron "0 3 * * *"   Europe/Berlin, catch_up (grace 6 h)
- scheduled notifications ...... every_s=60, catch_up (grace 10 min)
- payment reminders ............ cron "0 9 * * *"   Europe/Berlin, catch_up (grace 3 h)
- database backup daily ........ cron "30 1 * * *"  Europe/Berlin, catch_up (grace 6 h)
- database backup weekly ....... cron "0 5 * * sun" Europe/Berlin, catch_up (grace 24 h)
- health check ................. every_s=60, skip
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
        actor="maintenance.prune_job_ledger",
        cron="0 4 * * *",
        tz="Europe/Berlin",
        args=(30,),
        misfire="catch_up",
        grace_s=3 * 3600,
        description="delete finished ledger rows older than 30 days",
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
