"""The main job's operations traffic: subscription renewals (the daily job sent twice), the
cleanups on aged rows, a verified backup and a health check; then one summary line."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

from sqlalchemy import func, select, text

from devtools.workload.seed import Seeded
from devtools.workload.sent import Sent
from jobcore.db import session_scope
from shop.models import Backup, HealthCheck, Inventory, OpsRun, Subscription, SubscriptionDelivery
from shop.ops.health import latest
from shop.settings import Settings
from shop.subscriptions.subscriptions import local_today

SUBSCRIPTIONS = 30
AGED_ROWS = """
INSERT INTO carts (user_id, updated_at) SELECT :user, now() - interval '45 days' FROM generate_series(1, 400);
INSERT INTO cart_items (cart_id, product_id, quantity)
  SELECT id, :product, 1 FROM carts WHERE id % 2 = 0 AND updated_at < now() - interval '40 days';
INSERT INTO tokens (user_id, kind, token_hash, expires_at)
  SELECT :user, 'otp', 'workload-' || g, now() - interval '1 day' FROM generate_series(1, 300) g;
INSERT INTO user_sessions (user_id, session_key, last_activity_at, expires_at)
  SELECT NULL, 'workload-' || g, now() - interval '30 days', now() - interval '1 day' FROM generate_series(1, 300) g;
INSERT INTO audit_log (actor, action, created_at)
  SELECT 'workload', 'seeded', now() - interval '120 days' FROM generate_series(1, 500)
"""


def ops_jobs(rng: random.Random, seeded: Seeded) -> Sent:
    from actors import backups, health, maintenance, subscriptions

    sent = Sent("ops: subscriptions (daily job twice), cleanups, backup + verify, health")
    today = local_today(Settings.from_env().timezone)
    with session_scope() as s:
        plenty = s.scalar(select(Inventory.product_id).where(Inventory.available >= 500).limit(1))
        sold_out = s.scalar(select(Inventory.product_id).where(Inventory.available == 0).limit(1))
        for i in range(SUBSCRIPTIONS):
            s.add(
                Subscription(
                    user_id=rng.choice(seeded.user_ids),
                    product_id=plenty,
                    quantity=1,
                    frequency=rng.choice(["weekly", "monthly"]),
                    next_delivery_date=today,
                )
            )
        if sold_out is not None:  # renewed as "out_of_stock": no order, the date still advances
            s.add(
                Subscription(
                    user_id=seeded.user_ids[0],
                    product_id=sold_out,
                    frequency="monthly",
                    next_delivery_date=today,
                )
            )
        for _ in range(5):
            s.add(
                Subscription(
                    user_id=rng.choice(seeded.user_ids),
                    product_id=plenty,
                    frequency="weekly",
                    next_delivery_date=today + dt.timedelta(days=1),
                )
            )
        for statement in AGED_ROWS.split(";\n"):
            s.execute(text(statement), {"user": seeded.user_ids[0], "product": plenty})
    for actor in (
        subscriptions.process_due_subscriptions,
        subscriptions.process_due_subscriptions,
        subscriptions.send_subscription_renewal_reminders,
        maintenance.cleanup_expired_carts,
        maintenance.cleanup_expired_tokens,
        maintenance.cleanup_expired_sessions,
        maintenance.cleanup_abandoned_sessions,
        maintenance.cleanup_old_audit_logs,
        maintenance.prune_job_ledger_by_policy,
        backups.daily_backup,
        health.health_check,
    ):
        sent.message_ids.append(actor.send().message_id)
    return sent


def ops_summary(rng: random.Random, seeded: Seeded) -> Sent:
    """Print what the operations jobs did, read from their own tables."""
    with session_scope() as s:
        outcomes = dict(
            s.execute(
                select(SubscriptionDelivery.outcome, func.count()).group_by(
                    SubscriptionDelivery.outcome
                )
            ).all()
        )
        runs = {
            task: stats
            for task, stats in s.execute(select(OpsRun.task, OpsRun.stats).order_by(OpsRun.id))
        }
        backup = s.scalars(select(Backup).order_by(Backup.id.desc()).limit(1)).first()
        checks: list[HealthCheck] = latest(s)
    removed = {
        task.removeprefix("cleanup."): stats.get("removed", 0)
        for task, stats in runs.items()
        if task.startswith("cleanup.")
    }
    backup_text = (
        "none"
        if backup is None
        else (
            f"#{backup.id} {backup.status}, {backup.size_bytes or 0} bytes, {len(backup.table_counts)} tables, "
            f"dump {backup.dump_seconds}s, restore {backup.restore_seconds}s"
        )
    )
    down = [c.component for c in checks if not c.up]
    print(
        f"   ops: subscriptions {outcomes} (2 daily runs); reminders "
        f"{runs.get('subscriptions.renewal_reminders', {}).get('requested')}; cleanups removed {removed}; "
        f"backup {backup_text}; health {len(checks) - len(down)}/{len(checks)} up"
        f"{' (down: ' + ', '.join(down) + ')' if down else ''}",
        flush=True,
    )
    return Sent("ops: summary")


PHASES: list[list[Callable[[random.Random, Seeded], Sent]]] = [[ops_jobs], [ops_summary]]
