"""The shop's periodic jobs, in one place. The issue that adds an actor adds its entry here.

Names are stable (they are part of every fire's message id). Cron entries run on the wall
clock of their ``tz``; frequent ones are intervals, which DST does not touch.

Still to come, with the issues that add their actors (reference documents):
- subscriptions renewal ........ cron "0 0 * * *"   Europe/Berlin, catch_up (grace 6 h)
- expired carts cleanup ........ cron "0 2 * * *"   Europe/Berlin, catch_up (grace 6 h)
- expired tokens/sessions ...... cron "0 3 * * *"   Europe/Berlin, catch_up (grace 6 h)
- daily sales report ........... cron "0 6 * * *"   Europe/Berlin, catch_up (grace 12 h)
- low-stock alerts ............. cron "0 * * * *"   Europe/Berlin, skip
- inventory sync with warehouse  every_s=900, skip
- price feed ................... cron "*/5 9-17 * * mon-fri" Europe/Berlin (market hours), skip
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
]
