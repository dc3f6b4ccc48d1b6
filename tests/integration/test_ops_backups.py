"""Backups with the real pg_dump/pg_restore: restorable with equal counts, damage detected,
retention keeps exactly N daily and M weekly, and a customer's data exported as JSON."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from collections import Counter
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy import select

from actors import backups as backup_actors
from jobcore.db import session_scope
from jobcore.models import LedgerEntry
from shop.models import Backup, Notification, Token
from shop.notifications.contexts import backup as backup_context
from shop.ops import backup_jobs, backups, pg_tools
from shop.settings import Settings
from tests.support.factories import make_order, make_product, make_user
from tests.support.waiting import wait_until


@pytest.fixture()
def targets(tmp_path: Path) -> dict[str, str]:
    return {
        "SHOPJOBS_BACKUP_PRIMARY_URL": (tmp_path / "target-a").as_uri(),
        "SHOPJOBS_BACKUP_SECONDARY_URL": (tmp_path / "target-b").as_uri(),
        "SHOPJOBS_STORAGE_URL": (tmp_path / "storage").as_uri(),
    }


def _settings(targets: dict[str, str], **overrides: object) -> Settings:
    return dataclasses.replace(Settings.from_env(dict(os.environ) | targets), **overrides)


def _shop(orders: int = 40) -> list[int]:
    with session_scope() as s:
        product = make_product(s, stock=500)
        users = [make_user(s) for _ in range(10)]
        for i in range(orders):
            make_order(s, user=users[i % 10], lines=[(product, 1 + i % 3)])
        s.add(
            Token(
                user_id=users[0].id,
                kind="otp",
                token_hash="secret-hash-never-exported",
                expires_at=product.created_at,
            )
        )
        return [u.id for u in users]


def _backup(backup_id: int) -> Backup:
    with session_scope() as s:
        return s.get(Backup, backup_id)


def _file(url: str, key: str) -> Path:
    return Path(url.removeprefix("file://")) / key


def _counts(dsn: str, tables: list[str]) -> dict[str, int]:
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            return pg_tools.count_rows(cur, tables)
    finally:
        conn.close()


def test_a_daily_backup_goes_to_both_targets_and_restores_with_equal_row_counts(
    targets, start_worker
):
    # Given a shop with customers and orders
    _shop()
    settings = _settings(targets)
    start_worker("actors", processes=1, threads=2, env=targets)

    # When the daily backup job runs
    backup_actors.daily_backup.send()
    done = wait_until(
        lambda: _one_backup_in({"verified", "corrupt", "failed"}), 120, what="the backup verified"
    )

    # Then it verified, both targets hold identical bytes with the recorded checksum
    assert done.status == "verified", done.error
    assert done.kind == "daily" and done.size_bytes > 0 and done.restore_seconds is not None
    copies = [_file(url, done.storage_key) for url in backups.targets(settings)]
    assert all(c.read_bytes() == copies[0].read_bytes() for c in copies)
    assert pg_tools.existing_tables(settings.database_url, ["users"]) == ["users"]
    assert done.table_counts["orders"] == 40 and done.table_counts["users"] == 10
    # And restoring the second copy by hand (as the backup login) into a scratch database gives
    # the live row counts
    tables = sorted(done.table_counts)
    with pg_tools.scratch_database(settings.backup_dsn) as scratch:
        dsn = scratch.replace("postgresql+psycopg2://", "postgresql://")
        subprocess.run(
            ["/usr/bin/pg_restore", "--no-owner", "--exit-on-error", "-d", dsn, str(copies[1])],
            check=True,
            capture_output=True,
        )
        restored = _counts(dsn, tables)
    assert restored == _counts(settings.psycopg_dsn, tables) == done.table_counts


def _one_backup_in(states: set[str]) -> Backup | None:
    with session_scope() as s:
        rows = s.scalars(select(Backup)).all()
    return rows[0] if len(rows) == 1 and rows[0].status in states else None


def test_a_backup_file_with_changed_bytes_is_detected_by_verification(targets, start_worker):
    # Given a sound backup written to both targets
    _shop()
    settings = _settings(targets)
    created = backups.create_backup(settings, "daily", "2026-01-01")
    # And bytes in the middle of the first target's copy changed
    damaged = _file(settings.backup_primary_url, created["key"])
    data = bytearray(damaged.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    damaged.write_bytes(bytes(data))
    start_worker("actors", processes=1, threads=2, env=targets)

    # When it is verified on the worker
    message = backup_actors.verify_backup.send(created["backup_id"])

    # Then the job fails for good (no retry), the backup is marked corrupt with both reasons
    wait_until(
        lambda: _state(message.message_id) in ("failed", "dead"), 90, what="the verify job failed"
    )
    row = _backup(created["backup_id"])
    assert row.status == "corrupt", f"the job failed otherwise: {_error(message.message_id)}"
    assert "target 1: checksum mismatch" in row.error
    assert "target 1: restore failed" in row.error or "target 1: row counts differ" in row.error
    assert "target 2" not in row.error
    with session_scope() as s:
        attempts = s.scalar(
            select(LedgerEntry.attempts).where(LedgerEntry.message_id == message.message_id)
        )
        alerts = s.scalars(
            select(Notification).where(Notification.template == "backup_verification_failed")
        ).all()
    assert attempts == 1
    assert [(a.entity_key, a.user_id) for a in alerts] == [(f"backup:{created['backup_id']}", None)]
    with session_scope() as s:
        assert backup_context.load(s, str(created["backup_id"]))["status"] == "corrupt"


def _error(message_id: str) -> str | None:
    with session_scope() as s:
        return s.scalar(select(LedgerEntry.error).where(LedgerEntry.message_id == message_id))


def _state(message_id: str) -> str | None:
    with session_scope() as s:
        return s.scalar(select(LedgerEntry.state).where(LedgerEntry.message_id == message_id))


def test_retention_keeps_exactly_the_newest_n_daily_and_m_weekly_backups_in_both_targets(
    targets, clean
):
    # Given retention of 2 daily and 1 weekly backups, and 4 daily and 3 weekly ones made
    settings = _settings(targets, backup_keep_daily=2, backup_keep_weekly=1)
    made = [
        backups.create_backup(settings, "daily", f"2026-03-0{d}")["backup_id"] for d in range(1, 5)
    ]
    made += [
        backups.create_backup(settings, "weekly", f"2026-W0{w}")["backup_id"] for w in range(1, 4)
    ]

    # When retention runs (twice: it is idempotent)
    first = backups.apply_retention(settings)
    backups.apply_retention(settings)

    # Then the newest two daily and the newest weekly remain, the rest are gone from both targets
    kept = {made[2], made[3], made[6]}
    assert sorted(first["deleted"]["daily"]) == made[:2]
    assert sorted(first["deleted"]["weekly"]) == made[4:6]
    for backup_id in made:
        row = _backup(backup_id)
        files = [_file(url, row.storage_key).exists() for url in backups.targets(settings)]
        if backup_id in kept:
            assert row.status == "created" and files == [True, True]
        else:
            assert row.status == "deleted" and files == [False, False]
    with session_scope() as s:
        assert Counter(s.scalars(select(Backup.kind).where(Backup.status != "deleted"))) == {
            "daily": 2,
            "weekly": 1,
        }


def test_a_customers_data_export_is_one_json_document_without_secrets(targets, start_worker):
    user_ids = _shop()
    start_worker("actors", processes=1, threads=2, env=targets)

    message = backup_actors.export_customer_data.send(user_ids[0])

    wait_until(lambda: _state(message.message_id) == "succeeded", 60, what="the export finished")
    [path] = list(Path(targets["SHOPJOBS_STORAGE_URL"].removeprefix("file://")).rglob("*.json"))
    document = json.loads(path.read_text())
    assert document["user"]["id"] == user_ids[0]
    assert len(document["orders"]) == 4 and len(document["order_lines"]) == 4
    assert "secret-hash-never-exported" not in path.read_text()
    assert all("payment_token" not in order for order in document["orders"])


def test_a_snapshot_before_a_risky_operation_is_verified_and_reused_for_the_same_request(
    targets, clean
):
    # Given a shop, and an operator about to run a bulk price change
    _shop(orders=5)
    settings = _settings(targets)

    # When the snapshot is asked for, and asked again with the same request key (a retry)
    first = backup_jobs.snapshot_before(
        settings, "before bulk price change", request_key="price-change-17"
    )
    again = backup_jobs.snapshot_before(
        settings, "before bulk price change", request_key="price-change-17"
    )

    # Then one verified snapshot exists, and the retry returned it instead of dumping again
    assert first["status"] == "verified" and first["kind"] == "snapshot"
    assert again["backup_id"] == first["backup_id"]
    with session_scope() as s:
        assert s.scalars(select(Backup.label)).all() == ["before bulk price change"]
