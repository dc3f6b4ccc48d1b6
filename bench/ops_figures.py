"""Figures of the operations jobs on a shop of realistic size, in a database of its own:
backup size, dump and restore time (verification), and cleanup throughput per batch.

usage: python -m bench.ops_figures [--orders 50000] [--audit 200000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time

URL = os.environ.get(
    "SHOPJOBS_BENCH_DATABASE_URL",
    "postgresql+psycopg2://postgres@127.0.0.1:5432/shopjobs_bench_ops",
)

SEED = """
INSERT INTO users (email, full_name) SELECT 'bench' || g || '@example.test', 'Bench ' || g FROM generate_series(1, :users) g;
INSERT INTO products (sku, name, price_cents) SELECT 'B-' || g, 'Product ' || g, 100 + g FROM generate_series(1, 500) g;
INSERT INTO inventory (product_id, available) SELECT id, 1000 FROM products;
INSERT INTO orders (user_id, status, total_cents) SELECT 1 + g % :users, 'completed', 1000 FROM generate_series(1, :orders) g;
INSERT INTO order_lines (order_id, product_id, quantity, unit_price_cents)
  SELECT id, 1 + id % 500, 1 + id % 3, 500 FROM orders;
INSERT INTO audit_log (actor, action, created_at, details)
  SELECT 'bench', 'seeded', now() - (g % 180) * interval '1 day', '{"k": "v"}' FROM generate_series(1, :audit) g
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=50_000)
    ap.add_argument("--audit", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=1000)
    args = ap.parse_args()
    os.environ["SHOPJOBS_DATABASE_URL"] = URL
    from sqlalchemy import text

    from jobcore import db
    from shop import dbadmin
    from shop.ops import backups, cleanup
    from shop.ops.backup_verify import verify_backup
    from shop.settings import Settings

    dbadmin.create_database(URL, recreate=True)
    dbadmin.migrate(URL)
    try:
        with db.session_scope() as s:
            for statement in SEED.split(";\n"):
                s.execute(
                    text(statement), {"users": 5000, "orders": args.orders, "audit": args.audit}
                )
        with tempfile.TemporaryDirectory(prefix="bench-ops-") as tmp:
            settings = dataclasses.replace(
                Settings.from_env(),
                backup_primary_url=f"file://{tmp}/a",
                backup_secondary_url=f"file://{tmp}/b",
            )
            started = time.monotonic()
            created = backups.create_backup(settings, "snapshot", "bench")
            total = time.monotonic() - started
            verified = verify_backup(settings, created["backup_id"])
            print(
                f"backup: {created['size_bytes'] / 1e6:.2f} MB, {created['tables']} tables, "
                f"dump {created['dump_seconds']:.2f} s (dump + two copies {total:.2f} s); "
                f"verification {verified['status']}: restore + row counts {verified['restore_seconds']:.2f} s "
                f"per copy"
            )
        started = time.monotonic()
        stats = cleanup.old_audit_logs(90, args.batch)
        seconds = time.monotonic() - started
        print(
            f"cleanup: {stats['removed']} audit rows older than 90 days removed in {stats['batches']} batches "
            f"of <= {args.batch} ({stats['removed'] / stats['batches']:.0f} rows per batch), "
            f"{seconds:.2f} s = {stats['removed'] / seconds:.0f} rows/s, "
            f"{seconds / stats['batches'] * 1000:.1f} ms per batch transaction"
        )
    finally:
        db.dispose_engine()
        dbadmin.drop_database(URL)


if __name__ == "__main__":
    main()
