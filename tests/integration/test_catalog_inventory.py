"""Inventory jobs on real workers: the warehouse sync, availability with the wait-list, low-stock alerts."""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import select, update

from actors.inventory import (
    check_low_stock_alerts,
    sync_inventory_levels,
    update_product_availability,
)
from jobcore.db import session_scope
from shop.catalog import restock
from shop.models import Inventory, InventoryDiscrepancy, InventorySyncRun, Product
from tests.support.catalog import count, finished, notifications
from tests.support.factories import make_product, make_user


def _products(n: int, stock: int = 10) -> list[Product]:
    with session_scope() as s:
        products = [make_product(s, stock=stock) for _ in range(n)]
        s.expunge_all()
        return products


def test_a_sync_pulls_every_page_applies_stock_records_discrepancies_and_stores_a_report(
    catalog, catalog_worker
):
    # Given 450 products (3 pages at the warehouse), 5 of them counted differently there, one of
    # them sold out with 2 customers waiting, 3 SKUs we do not sell, and a warehouse that fails twice
    products = _products(450)
    stock = {p.sku: 10 for p in products}
    changed = {products[i].sku: 10 + i for i in (1, 2, 3, 4)}
    stock.update(changed)
    with session_scope() as s:
        sold_out = make_product(s, stock=0, is_active=False)
        waiting = [make_user(s).id for _ in range(2)]
        for user_id in waiting:
            restock.join_wait_list(s, sold_out.id, user_id)
        sold_out_sku, sold_out_id = sold_out.sku, sold_out.id
    stock[sold_out_sku] = 7
    stock.update({"NOT-OURS-1": 1, "NOT-OURS-2": 2, "NOT-OURS-3": 3})
    warehouse = catalog["warehouse"]
    warehouse.admin("POST", "/_admin/stock", stock)
    warehouse.set_faults(mode="http_503", paths=["/v1/stock"], rate=0.5, times=2)

    # When the sync runs (and its message is delivered a second time after it finished)
    message = sync_inventory_levels.send()
    assert finished(message.message_id).state == "succeeded"
    sync_inventory_levels.broker.enqueue(message)

    # Then the warehouse's faults were hit and retried, and the one run applied every count
    assert warehouse.faults()["injected"] == 2
    with session_scope() as s:
        run = s.execute(select(InventorySyncRun)).scalar_one()
        assert (run.status, run.run_key, run.items, run.unknown_skus) == (
            "finished",
            message.message_id,
            454,
            3,
        )
        assert run.discrepancies == 5
        found = {
            p.sku: (d.ours, d.warehouse)
            for d, p in s.execute(
                select(InventoryDiscrepancy, Product).join(
                    Product, Product.id == InventoryDiscrepancy.product_id
                )
            )
        }
        assert found == {**{sku: (10, n) for sku, n in changed.items()}, sold_out_sku: (0, 7)}
        for sku, n in changed.items():
            assert (
                s.scalar(select(Inventory.available).join(Product).where(Product.sku == sku)) == n
            )
        assert s.get(Product, sold_out_id).is_active is True
        report_key, report_sha = run.report_key, run.report_sha256
    # the stored report is whole and says what the run found
    with catalog["storage"].open(report_key) as f:
        raw = f.read()
    assert hashlib.sha256(raw).hexdigest() == report_sha
    report = json.loads(raw)
    assert report["discrepancies"] == 5 and report["unknown_sku_list"] == [
        "NOT-OURS-1",
        "NOT-OURS-2",
        "NOT-OURS-3",
    ]
    # the sold-out product came back: each waiting customer is told once
    assert notifications("back_in_stock") == sorted(
        (f"product:{sold_out_id}#1-{u}", u) for u in waiting
    )
    # the redelivered message changed nothing
    finished(message.message_id)
    assert count(InventorySyncRun) == 1 and count(InventoryDiscrepancy) == 5


def test_a_comeback_notifies_the_wait_list_once_per_restock_and_search_follows_availability(
    catalog, catalog_worker
):
    # Given a sold-out product named "Copper kettle" with three customers on its wait-list
    with session_scope() as s:
        product = make_product(s, stock=0, is_active=False, name="Copper kettle")
        first = [make_user(s).id for _ in range(3)]
        for user_id in first:
            restock.join_wait_list(s, product.id, user_id)
        assert restock.join_wait_list(s, product.id, first[0]) is False  # once per customer
        pid = product.id

    def set_stock(n: int) -> None:
        with session_scope() as s:
            s.execute(update(Inventory).where(Inventory.product_id == pid).values(available=n))

    def run_availability(times: int = 1) -> None:
        for _ in range(times):
            assert finished(update_product_availability.send(pid).message_id).state == "succeeded"

    def found_by_search() -> bool:
        with session_scope() as s:
            return pid in restock.search(s, "copper kettle")

    # When stock arrives and availability is computed three times
    set_stock(5)
    run_availability(3)
    # Then the product is active and searchable, and each customer was told once
    assert found_by_search()
    assert notifications("back_in_stock") == sorted((f"product:{pid}#1-{u}", u) for u in first)

    # When it sells out (it leaves search), a new customer waits, and it comes back again
    set_stock(0)
    run_availability()
    assert not found_by_search()
    with session_scope() as s:
        late = make_user(s).id
        restock.join_wait_list(s, pid, late)
    set_stock(2)
    run_availability(2)
    # Then only the new customer is told, under the second restock
    assert found_by_search()
    assert notifications("back_in_stock") == sorted(
        [(f"product:{pid}#1-{u}", u) for u in first] + [(f"product:{pid}#2-{late}", late)]
    )


def test_low_stock_alerts_once_per_crossing_and_again_after_a_restock(catalog, catalog_worker):
    # Given one product under its threshold (2 < 5) and one above it
    with session_scope() as s:
        low = make_product(s, stock=2).id
        make_product(s, stock=50)

    def check() -> None:
        assert finished(check_low_stock_alerts.send().message_id).state == "succeeded"

    # When the check runs twice, then the admins got one alert (user None: administrators)
    check()
    check()
    assert notifications("low_stock") == [(f"product:{low}#1", None)]

    # When it is restocked, checked, sells down under the threshold again and is checked twice
    with session_scope() as s:
        s.execute(update(Inventory).where(Inventory.product_id == low).values(available=20))
    check()
    with session_scope() as s:
        assert s.get(Inventory, low).low_stock_alerted is False
        s.execute(update(Inventory).where(Inventory.product_id == low).values(available=1))
    check()
    check()
    # Then there is exactly one more alert, for the second crossing
    assert notifications("low_stock") == [(f"product:{low}#1", None), (f"product:{low}#2", None)]


def test_an_availability_update_for_a_bad_or_unknown_id_fails_at_once_with_the_reason(
    catalog, catalog_worker
):
    bad = finished(update_product_availability.send("42").message_id)
    missing = finished(update_product_availability.send(987654).message_id)
    assert (bad.state, bad.attempts) == ("failed", 1) and "positive integer" in bad.error
    assert (missing.state, missing.attempts) == ("failed", 1) and "does not exist" in missing.error
