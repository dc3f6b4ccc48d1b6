"""The cleanups on a real worker: rows removed in batches, only those past their age."""

from __future__ import annotations

from sqlalchemy import select, text

from actors import maintenance
from jobcore.db import session_scope
from shop.models import OpsRun
from tests.support.factories import make_product, make_user
from tests.support.waiting import wait_until

BATCH = 40

SEED = """
INSERT INTO carts (user_id, created_at, updated_at)
  SELECT :user, now() - interval '40 days', now() - interval '40 days' FROM generate_series(1, 100);  -- old, empty
INSERT INTO carts (user_id, created_at, updated_at)
  SELECT :user, now() - interval '40 days', now() - interval '35 days' FROM generate_series(1, 60);   -- old, items
INSERT INTO carts (user_id, updated_at) SELECT :user, now() - interval '3 days' FROM generate_series(1, 30);
INSERT INTO carts (user_id, updated_at) SELECT :user, now() - interval '29 days' FROM generate_series(1, 20);
INSERT INTO cart_items (cart_id, product_id, quantity)
  SELECT c.id, :product, 2 FROM carts c WHERE c.updated_at < now() - interval '34 days'
     AND c.updated_at > now() - interval '36 days'
  UNION ALL SELECT c.id, :product, 1 FROM carts c WHERE c.updated_at > now() - interval '30 days';
INSERT INTO tokens (user_id, kind, token_hash, expires_at, used_at)
  SELECT :user, (ARRAY['password_reset', 'email_verification', 'otp'])[1 + g % 3], 'expired-' || g,
         now() - interval '1 hour', NULL FROM generate_series(1, 90) g;
INSERT INTO tokens (user_id, kind, token_hash, expires_at, used_at)
  SELECT :user, 'password_reset', 'used-long-ago-' || g, now() + interval '1 hour', now() - interval '3 days'
  FROM generate_series(1, 20) g;
INSERT INTO tokens (user_id, kind, token_hash, expires_at, used_at)
  SELECT :user, 'otp', 'live-' || g, now() + interval '10 minutes', NULL FROM generate_series(1, 30) g;
INSERT INTO tokens (user_id, kind, token_hash, expires_at, used_at)
  SELECT :user, 'email_verification', 'used-now-' || g, now() + interval '1 day', now() - interval '1 hour'
  FROM generate_series(1, 10) g;
INSERT INTO user_sessions (user_id, session_key, last_activity_at, expires_at)
  SELECT NULL, 'expired-' || g, now() - interval '2 days', now() - interval '1 day' FROM generate_series(1, 110) g;
INSERT INTO user_sessions (user_id, session_key, last_activity_at, expires_at)
  SELECT CASE WHEN g % 2 = 0 THEN :user END, 'idle-' || g, now() - interval '20 days', now() + interval '30 days'
  FROM generate_series(1, 50) g;
INSERT INTO user_sessions (user_id, session_key, last_activity_at, expires_at)
  SELECT :user, 'live-' || g, now() - interval '1 hour', now() + interval '7 days' FROM generate_series(1, 25) g;
INSERT INTO audit_log (actor, action, created_at)
  SELECT 'admin', 'price_changed', now() - interval '100 days' FROM generate_series(1, 130);
INSERT INTO audit_log (actor, action, created_at)
  SELECT 'admin', 'price_changed', now() - interval '80 days' FROM generate_series(1, 40);
INSERT INTO job_ledger (message_id, actor, queue, state, state_changed_at)
  SELECT 'old-ok-' || g, 'a', 'q', (ARRAY['succeeded', 'skipped'])[1 + g % 2], now() - interval '20 days'
  FROM generate_series(1, 100) g;
INSERT INTO job_ledger (message_id, actor, queue, state, state_changed_at)
  SELECT 'old-failed-' || g, 'a', 'q', 'failed', now() - interval '20 days' FROM generate_series(1, 25) g;
INSERT INTO job_ledger (message_id, actor, queue, state, state_changed_at)
  SELECT 'ancient-dead-' || g, 'a', 'q', 'dead', now() - interval '70 days' FROM generate_series(1, 45) g;
INSERT INTO job_ledger (message_id, actor, queue, state, state_changed_at)
  SELECT 'stuck-' || g, 'a', 'q', 'running', now() - interval '90 days' FROM generate_series(1, 10) g;
INSERT INTO job_groups (id, total, succeeded, settled_at)
  SELECT 'old-group-' || g, 2, 2, now() - interval '70 days' FROM generate_series(1, 30) g;
INSERT INTO job_group_members (message_id, group_id, outcome)
  SELECT 'old-child-' || g, 'old-group-' || (1 + g % 30), 'succeeded' FROM generate_series(1, 60) g;
INSERT INTO job_groups (id, total, succeeded, settled_at)
  VALUES ('recent-group', 1, 1, now() - interval '1 day'), ('pending-group', 5, 1, NULL);
INSERT INTO job_group_members (message_id, group_id, outcome)
  VALUES ('recent-child', 'recent-group', 'succeeded'), ('pending-child', 'pending-group', 'failed');
INSERT INTO job_unique_keys (key, message_id, expires_at)
  SELECT 'expired-' || g, 'm-expired-' || g, now() - interval '2 hours' FROM generate_series(1, 70) g;
INSERT INTO job_unique_keys (key, message_id, expires_at)
  VALUES ('live-key', 'm-live', now() + interval '1 hour');
"""


def _count(sql: str) -> int:
    with session_scope() as s:
        return int(s.execute(text(sql)).scalar())


def test_cleanups_remove_only_rows_past_their_age_in_several_batches(start_worker):
    # Given old and recent carts, tokens, sessions, audit rows and ledger rows
    with session_scope() as s:
        user, product = make_user(s), make_product(s)
        for statement in SEED.split(";\n"):
            if statement.strip():
                s.execute(text(statement), {"user": user.id, "product": product.id})
    recent_cart_ids = _ids("SELECT id FROM carts WHERE updated_at > now() - interval '30 days'")
    live_token_ids = _ids(
        "SELECT id FROM tokens WHERE token_hash LIKE 'live-%' OR token_hash LIKE 'used-now-%'"
    )
    start_worker("actors", processes=1, threads=4, env={"SHOPJOBS_CLEANUP_BATCH_SIZE": str(BATCH)})

    # When every cleanup runs on the worker
    for actor in (
        maintenance.cleanup_expired_carts,
        maintenance.cleanup_expired_tokens,
        maintenance.cleanup_expired_sessions,
        maintenance.cleanup_abandoned_sessions,
        maintenance.cleanup_old_audit_logs,
        maintenance.prune_job_ledger_by_policy,
    ):
        actor.send()
    runs = wait_until(_runs_if_all_six, 60, what="six cleanup runs recorded")

    # Then each removed exactly the rows past their age, in more than one batch of at most BATCH
    carts = runs["cleanup.expired_carts"]
    assert (carts["empty_carts"], carts["carts_with_items"]) == (100, 60)
    assert runs["cleanup.expired_tokens"]["removed"] == 110
    assert runs["cleanup.expired_tokens"]["by"] == {
        "email_verification": 30,
        "otp": 30,
        "password_reset": 50,
    }
    assert runs["cleanup.expired_sessions"]["removed"] == 110
    assert runs["cleanup.abandoned_sessions"]["by"] == {"anonymous": 25, "customer": 25}
    assert runs["cleanup.old_audit_logs"]["removed"] == 130
    assert runs["cleanup.job_ledger"]["by"] == {"dead": 45, "skipped": 50, "succeeded": 50}
    # settled groups older than the ledger keeps their children (and their members) go, and
    # unique keys whose window ended: pending and recent groups and live keys stay
    ledger = runs["cleanup.job_ledger"]
    assert (ledger["groups_removed"], ledger["unique_keys_removed"]) == (30, 70)
    assert _ids("SELECT id FROM job_groups") == ["pending-group", "recent-group"]
    assert _count("SELECT count(*) FROM job_group_members") == 2
    assert _ids("SELECT key FROM job_unique_keys") == ["live-key"]
    for task, stats in runs.items():
        if stats["removed"] > BATCH:
            assert stats["batches"] > 1, task
        assert stats["largest_batch"] <= BATCH, task
    # And the survivors are untouched
    assert _ids("SELECT id FROM carts") == recent_cart_ids
    assert _count("SELECT count(*) FROM cart_items") == 50
    assert _ids("SELECT id FROM tokens") == live_token_ids
    assert _count("SELECT count(*) FROM user_sessions") == 25
    assert _count("SELECT count(*) FROM user_sessions WHERE session_key LIKE 'live-%'") == 25
    assert (
        _count("SELECT count(*) FROM audit_log WHERE created_at < now() - interval '90 days'") == 0
    )
    assert _count("SELECT count(*) FROM audit_log") == 40
    assert _count("SELECT count(*) FROM job_ledger WHERE message_id LIKE 'old-failed-%'") == 25
    assert _count("SELECT count(*) FROM job_ledger WHERE message_id LIKE 'stuck-%'") == 10


def _ids(sql: str) -> list[int]:
    with session_scope() as s:
        return sorted(s.execute(text(sql)).scalars())


def _runs_if_all_six() -> dict[str, dict] | None:
    with session_scope() as s:
        rows = s.execute(select(OpsRun.task, OpsRun.stats).order_by(OpsRun.id)).all()
    runs = {task: stats for task, stats in rows}
    assert len(runs) == len(rows), f"a cleanup recorded twice: {[task for task, _ in rows]}"
    return runs if len(runs) == 6 else None
