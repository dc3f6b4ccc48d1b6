"""What the main job sends. Each scenario enqueues its jobs and says which failures it expects.

Later capabilities add a scenario here, so the main job always exercises everything the system
can do.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

from devtools.workload.seed import Seeded
from devtools.workload.sent import Sent
from jobcore import amqp, outbox
from jobcore.db import session_scope
from shop.job_records import create_job


def availability_updates(rng: random.Random, seeded: Seeded) -> Sent:
    """Stock changed: every product's availability is recomputed, many of them several times."""
    from actors.inventory import update_product_availability

    sent = Sent("inventory: availability updates")
    for _ in range(250):
        sent.message_ids.append(
            update_product_availability.send(rng.choice(seeded.product_ids)).message_id
        )
    # a client bug: an id that does not exist (a permanent error, not retried)
    for missing in (999_999, 888_888):
        sent.message_ids.append(update_product_availability.send(missing).message_id)
        sent.expected_failures += 1
    return sent


def report_jobs(rng: random.Random, seeded: Seeded) -> Sent:
    """Back-office staff request order reports (the shop's Job record), enqueued with the write."""
    from actors.jobs import process_job

    sent = Sent("jobs: order reports")
    today = dt.date.today()
    with session_scope() as s:
        for days in range(1, 25):
            params = {
                "from": (today - dt.timedelta(days=days)).isoformat(),
                "to": today.isoformat(),
            }
            job = create_job(s, "order_stats", params, requested_by=rng.choice(seeded.user_ids))
            sent.message_ids.append(outbox.enqueue(s, process_job, job.id))
        bad = create_job(s, "order_stats", {"from": "last tuesday", "to": today.isoformat()})
        sent.message_ids.append(outbox.enqueue(s, process_job, bad.id))
        sent.expected_failures += 1
    return sent


def malformed_input(rng: random.Random, seeded: Seeded) -> Sent:
    """A buggy client publishes straight into a queue: not JSON, wrong types, an unknown actor.
    Workers survive; each body lands in dead_letters (reason undecodable / unknown_actor)."""
    import json
    import os

    import pika

    bodies = [
        b"\x00 not json",
        b"[1, 2, 3]",
        json.dumps(
            {
                "queue_name": "inventory",
                "actor_name": "inventory.nope",
                "args": [],
                "kwargs": {},
                "options": {},
                "message_id": f"bad-{rng.random()}",
                "message_timestamp": 0,
            }
        ).encode(),
    ]
    conn = amqp.connect(os.environ["SHOPJOBS_AMQP_URL"])
    try:
        channel = conn.channel()
        channel.confirm_delivery()
        for body in bodies:
            channel.basic_publish("", "inventory", body, pika.BasicProperties(delivery_mode=2))
    finally:
        conn.close()
    # the unknown actor is recorded in the ledger as dead; the other two never were jobs
    return Sent("malformed bodies published straight into a queue", expected_failures_later=1)


def housekeeping(rng: random.Random, seeded: Seeded) -> Sent:
    from actors.maintenance import prune_job_ledger, relay_outbox

    return Sent(
        "maintenance", [relay_outbox.send().message_id, prune_job_ledger.send(30).message_id]
    )


Scenario = Callable[[random.Random, Seeded], Sent]


def phases() -> list[list[Scenario]]:
    """Scenarios in phases: a phase starts once every job of the one before has finished."""
    from devtools.workload import (
        catalog_scenarios,
        operator_scenarios,
        ops_scenarios,
        order_scenarios,
        workflow_scenarios,
    )
    from devtools.workload import notification_scenarios as notify

    return [
        [
            notify.notifications,
            availability_updates,
            report_jobs,
            housekeeping,
            malformed_input,
            order_scenarios.order_pipeline,
            operator_scenarios.cancel_delayed_jobs,
            catalog_scenarios.catalog_jobs,
            workflow_scenarios.unique_sends,
            workflow_scenarios.availability_group,
        ],
        [order_scenarios.order_follow_ups, notify.refusals],
        *ops_scenarios.PHASES,
    ]
