"""Pull stock from the warehouse, page by page, and make ours agree with it.

A run is keyed by its message id: a retry after a warehouse outage resumes the same run, and
a redelivery of a finished run does nothing. Applying a page sets absolute values (on hand
minus what orders hold), so applying it twice changes nothing; each discrepancy is recorded
once per (run, product). The run's report is stored as JSON with its SHA-256.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from jobcore.db import session_scope
from shop.catalog import stock_alerts
from shop.catalog.inventory import update_product_availability
from shop.integrations import files, providers
from shop.models import Inventory, InventoryDiscrepancy, InventorySyncRun, Product

log = logging.getLogger(__name__)
PAGE_SIZE = 200


def sync_inventory_levels(run_key: str, page_size: int = PAGE_SIZE) -> dict[str, Any]:
    """Run (or resume) the sync ``run_key``; returns its counts."""
    with session_scope() as s:
        s.execute(
            insert(InventorySyncRun)
            .values(run_key=run_key)
            .on_conflict_do_nothing(index_elements=["run_key"])
        )
        run = s.execute(
            select(InventorySyncRun).where(InventorySyncRun.run_key == run_key)
        ).scalar_one()
        run_id, status = run.id, run.status
    if status == "finished":
        log.info("inventory sync %r already finished (run %r): nothing to do", run_key, run_id)
        return {"run_id": run_id, "skipped": True}
    counts = {"pages": 0, "items": 0, "applied": 0, "discrepancies": 0, "unknown_skus": 0}
    unknown: list[str] = []
    for items in providers.warehouse().stock_pages(page_size):
        counts["pages"] += 1
        counts["items"] += len(items)
        with session_scope() as s:
            applied, missing = _apply_page(s, run_id, {i["sku"]: i["on_hand"] for i in items})
        counts["applied"] += applied
        unknown.extend(missing)
    counts["unknown_skus"] = len(unknown)
    return _finish(run_id, run_key, counts, unknown)


def _apply_page(s: Any, run_id: int, on_hand: dict[str, int]) -> tuple[int, list[str]]:
    """Apply one page in one transaction; returns (rows changed, SKUs we do not sell)."""
    rows = s.execute(
        select(Product.id, Product.sku, Inventory.available, Inventory.reserved)
        .join(Inventory, Inventory.product_id == Product.id)
        .where(Product.sku.in_(list(on_hand)))
        .order_by(Product.id)
        .with_for_update(of=Inventory)
    ).all()
    seen = {sku for _, sku, _, _ in rows}
    applied, changed_zero = 0, []
    for product_id, sku, available, reserved in rows:
        counted = on_hand[sku]
        if available + reserved == counted:
            continue
        s.execute(
            insert(InventoryDiscrepancy)
            .values(
                run_id=run_id, product_id=product_id, ours=available + reserved, warehouse=counted
            )
            .on_conflict_do_nothing(constraint="uq_inventory_discrepancies_run_product")
        )
        new_available = max(counted - reserved, 0)
        s.execute(
            update(Inventory)
            .where(Inventory.product_id == product_id)
            .values(available=new_available)
        )
        applied += 1
        if (available > 0) != (new_available > 0):
            changed_zero.append(product_id)
    for product_id in changed_zero:
        update_product_availability(s, product_id)
    stock_alerts.reset_restocked(s, [pid for pid, *_ in rows])
    return applied, sorted(set(on_hand) - seen)


def _finish(
    run_id: int, run_key: str, counts: dict[str, int], unknown: list[str]
) -> dict[str, Any]:
    with session_scope() as s:
        found = s.execute(
            select(
                InventoryDiscrepancy.product_id,
                Product.sku,
                InventoryDiscrepancy.ours,
                InventoryDiscrepancy.warehouse,
            )
            .join(Product, Product.id == InventoryDiscrepancy.product_id)
            .where(InventoryDiscrepancy.run_id == run_id)
            .order_by(InventoryDiscrepancy.product_id)
        ).all()
    counts["discrepancies"] = len(found)
    report = {
        "run_id": run_id,
        "run_key": run_key,
        "finished_at": dt.datetime.now(dt.UTC).isoformat(),
        **counts,
        "discrepancy_list": [
            {"product_id": p, "sku": k, "ours": o, "warehouse": w} for p, k, o, w in found
        ],
        "unknown_sku_list": unknown,
    }
    stored = files.storage().put(
        f"reports/inventory/sync-{run_id:08d}.json",
        json.dumps(report, indent=1).encode(),
        content_type="application/json",
    )
    with session_scope() as s:
        s.execute(
            update(InventorySyncRun)
            .where(InventorySyncRun.id == run_id, InventorySyncRun.status == "running")
            .values(
                status="finished",
                finished_at=func.now(),
                report_key=stored.key,
                report_sha256=stored.sha256,
                **counts,
            )
        )
    log.info(
        "inventory sync %r (run %r): %r items, %r applied, %r discrepancies, %r unknown SKUs",
        run_key,
        run_id,
        counts["items"],
        counts["applied"],
        counts["discrepancies"],
        counts["unknown_skus"],
    )
    return {"run_id": run_id, **counts, "report_key": stored.key, "sha256": stored.sha256}
