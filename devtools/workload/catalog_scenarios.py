"""The main job's catalog traffic: a warehouse sync that brings sold-out products back to their
wait-lists, low-stock alerts, daily reports, rankings, exports, product images and price polls.

``prepare()`` starts the image server and two price sources and sets the workers' settings, so it
runs before the workers start; ``summary_lines()`` says what the jobs did, read from the database.
"""

from __future__ import annotations

import datetime as dt
import os
import random
from collections.abc import Callable

from sqlalchemy import func, select

from devtools.workload.seed import Seeded
from devtools.workload.sent import Sent
from jobcore import outbox
from jobcore.db import session_scope

_urls: dict[str, str] = {}


def allow_outbound(*urls: str) -> None:
    """Add ``urls``' ``host:port`` to SHOPJOBS_OUTBOUND_ALLOWED_HOSTS of this process (and of
    the workers it starts after): the stand-ins listen on loopback, which is refused unless
    listed, exactly as production lists a private endpoint."""
    from shop.integrations.outbound import host_port

    listed = [e for e in os.environ.get("SHOPJOBS_OUTBOUND_ALLOWED_HOSTS", "").split(",") if e]
    listed += [host_port(url) for url in urls]
    os.environ["SHOPJOBS_OUTBOUND_ALLOWED_HOSTS"] = ",".join(dict.fromkeys(listed))


def prepare() -> Callable[[], None]:
    """Start the catalog stand-ins and point this process (and the workers it starts) at them."""
    from devtools.stand_ins.process import start_stand_in

    started = {
        name: start_stand_in(kind, log_path=f".run/{name}.log")
        for name, kind in (("images", "images"), ("primary", "prices"), ("backup", "prices"))
    }
    _urls.update({name: s.url for name, s in started.items()})
    os.environ["SHOPJOBS_PRICE_FEED_SOURCES"] = (
        f"primary={_urls['primary']},backup={_urls['backup']}"
    )
    os.environ.setdefault("SHOPJOBS_STORAGE_URL", f"file://{os.path.abspath('.run/storage')}")
    # the outbound guard refuses loopback addresses unless the host is listed: list the image
    # and price stand-ins (the main job adds its other stand-ins)
    allow_outbound(*_urls.values())
    started["primary"].set_faults(
        mode="garbage", rate=0.5
    )  # every other poll falls back to the backup

    def stop() -> None:
        for stand_in in started.values():
            stand_in.stop()

    return stop


def catalog_jobs(rng: random.Random, seeded: Seeded) -> Sent:
    """Sync, wait-list comebacks, alerts, reports, rankings, exports, images and price polls."""
    import httpx

    from actors.inventory import check_low_stock_alerts, sync_inventory_levels
    from actors.media import generate_image_variants, process_product_images
    from actors.prices import poll_price_feed
    from actors.reports import (
        export_data_async,
        generate_daily_sales_report,
        update_product_rankings,
    )
    from shop.catalog import restock
    from shop.job_records import create_job
    from shop.models import Inventory, Product, ProductView

    sent = Sent("catalog: sync + wait-lists, alerts, reports, rankings, exports, images, prices")
    with session_scope() as s:
        stock = dict(
            s.execute(
                select(Product.sku, Inventory.available)
                .join(Inventory)
                .where(Product.id.in_(seeded.product_ids))
            ).all()
        )
        sold_out = list(
            s.scalars(
                select(Product.id)
                .join(Inventory)
                .where(Product.id.in_(seeded.product_ids), Inventory.available == 0)
            )
        )
        for pid in sold_out:  # customers wait for every sold-out product
            for user_id in rng.sample(seeded.user_ids, 3):
                restock.join_wait_list(s, pid, user_id)
        s.add_all(ProductView(product_id=rng.choice(seeded.product_ids)) for _ in range(500))
    # the warehouse counted differently: sold-out products are back, some counts are off
    counted = {
        sku: (n if rng.random() < 0.8 else n + rng.randint(1, 9)) or 12 for sku, n in stock.items()
    }
    httpx.post(
        f"{os.environ['SHOPJOBS_WAREHOUSE_URL']}/_admin/stock", json=counted, timeout=5
    ).raise_for_status()
    today = dt.date.today()
    ids = [
        sync_inventory_levels.send().message_id,
        check_low_stock_alerts.send().message_id,
        update_product_rankings.send().message_id,
    ]
    ids += [
        generate_daily_sales_report.send((today - dt.timedelta(days=d)).isoformat()).message_id
        for d in (1, 2, 1)
    ]  # the second run of yesterday replaces its report
    with session_scope() as s:
        for params in (
            {"kind": "orders", "format": "csv"},
            {"kind": "products", "format": "jsonl"},
            {"kind": "x"},
        ):
            ids.append(outbox.enqueue(s, export_data_async, create_job(s, "export", params).id))
    images = _urls["images"]
    for pid in seeded.product_ids[:4]:
        ids.append(
            process_product_images.send(
                pid, [f"{images}/images/photo.jpg", f"{images}/images/logo.png"]
            ).message_id
        )
    ids.append(
        process_product_images.send(
            seeded.product_ids[5], [f"{images}/images/corrupt.jpg"]
        ).message_id
    )
    ids.append(
        generate_image_variants.send(
            f"{images}/images/slow.jpg?delay=0.3", ["thumb", "medium"]
        ).message_id
    )
    ids += [poll_price_feed.send().message_id for _ in range(4)]
    sent.message_ids.extend(ids)
    sent.expected_failures += 2  # the export of an unknown kind, the corrupt image
    return sent


def summary_lines() -> list[str]:
    from shop.models import InventorySyncRun, Notification, PriceFeed, ProductImage, SalesReport

    with session_scope() as s:
        runs = s.execute(
            select(func.count(), func.coalesce(func.sum(InventorySyncRun.discrepancies), 0)).where(
                InventorySyncRun.status == "finished"
            )
        ).one()
        notes = dict(
            s.execute(
                select(Notification.template, func.count())
                .where(
                    Notification.template.in_(
                        (
                            "back_in_stock",
                            "low_stock",
                            "daily_sales_report",
                            "export_ready",
                            "price_feed_alert",
                        )
                    )
                )
                .group_by(Notification.template)
            ).all()
        )
        reports = s.execute(
            select(func.count(), func.coalesce(func.max(SalesReport.version), 0))
        ).one()
        variants = s.scalar(select(func.count()).select_from(ProductImage))
        feeds = s.execute(
            select(PriceFeed.feed, PriceFeed.value, PriceFeed.source, PriceFeed.incident)
        ).all()
    feed_text = (
        ", ".join(f"{f}={v} from {src} ({i} incidents)" for f, v, src, i in feeds) or "no value"
    )
    line = (
        f"catalog: {runs[0]} sync runs ({runs[1]} discrepancies), wait-list told {notes.get('back_in_stock', 0)}, "
        f"low-stock alerts {notes.get('low_stock', 0)}, {reports[0]} sales reports (max version {reports[1]}), "
        f"exports e-mailed {notes.get('export_ready', 0)}, {variants} image variants, price feed {feed_text}"
    )
    return [line]
