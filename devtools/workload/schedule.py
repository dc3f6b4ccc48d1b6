"""The main job's schedule: the production actors on short intervals, so a run of a few
seconds shows the scheduler firing (``SHOPJOBS_SCHEDULE_MODULE=devtools.workload.schedule``)."""

from __future__ import annotations

from shop.scheduling.entries import Entry

ACTOR_MODULES = ("actors",)

ENTRIES: list[Entry] = [
    Entry(
        name="relay-outbox",
        actor="maintenance.relay_outbox",
        every_s=1,
        tz="Europe/Berlin",
        misfire="skip",
        description="publish outbox rows whose after-commit publish was missed",
    ),
    Entry(
        name="prune-job-ledger",
        actor="maintenance.prune_job_ledger",
        cron="*/3 * * * * *",
        tz="Europe/Berlin",
        args=(30,),
        misfire="catch_up",
        grace_s=60,
        description="delete finished ledger rows older than 30 days",
    ),
    Entry(
        name="notifications-due",
        actor="notifications.process_due",
        every_s=5,
        tz="Europe/Berlin",
        misfire="skip",
        description="scheduled notifications now due, lost deliveries, recurring ones",
    ),
]
