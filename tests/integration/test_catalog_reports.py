"""Report jobs on real workers: the daily sales report, product rankings and streamed exports."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from zoneinfo import ZoneInfo

from sqlalchemy import select

from actors.reports import export_data_async, generate_daily_sales_report, update_product_rankings
from jobcore import outbox
from jobcore.db import session_scope
from shop.job_records import create_job
from shop.models import Job, Payment, ProductRanking, ProductView, Refund, SalesReport
from tests.support.catalog import count, finished, notifications
from tests.support.factories import make_order, make_product, make_user
from tests.support.waiting import wait_until

BERLIN = ZoneInfo("Europe/Berlin")
DAY = dt.date(2026, 3, 10)


def _at(hour: int, day: dt.date = DAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), BERLIN)


def test_the_daily_report_is_computed_in_sql_replaced_on_a_rerun_and_emailed_once(
    catalog, catalog_worker
):
    # Given on DAY: 3 sold orders (one of 2 lines), a pending and a cancelled one, one refund,
    # and a sold order on the next day (late evening in UTC is already the next day in Berlin)
    with session_scope() as s:
        user = make_user(s)
        mug, pot = make_product(s, price_cents=1000), make_product(s, price_cents=5000)
        make_order(s, user, [(mug, 2), (pot, 1)], status="completed", placed_at=_at(9))  # 7000
        make_order(s, user, [(mug, 1)], status="paid", placed_at=_at(12))  # 1000
        refunded = make_order(s, user, [(pot, 1)], status="completed", placed_at=_at(23))  # 5000
        make_order(s, user, [(pot, 3)], status="pending", placed_at=_at(10))
        make_order(s, user, [(pot, 3)], status="cancelled", placed_at=_at(11))
        make_order(
            s, user, [(mug, 9)], status="completed", placed_at=_at(0, DAY + dt.timedelta(days=1))
        )
        payment = Payment(
            order_id=refunded.id, idempotency_key="k1", amount_cents=5000, status="captured"
        )
        s.add(payment)
        s.flush()
        s.add(
            Refund(
                payment_id=payment.id,
                request_key="r1",
                amount_cents=1500,
                reason="damaged",
                status="completed",
                created_at=_at(15),
            )
        )
        mug_id, pot_id = mug.id, pot.id

    # When the report for DAY runs twice, and again after one more order arrives for DAY
    for _ in range(2):
        assert (
            finished(generate_daily_sales_report.send(DAY.isoformat()).message_id).state
            == "succeeded"
        )
    with session_scope() as s:
        make_order(s, lines=[(s.get(type(mug), mug_id), 1)], status="shipped", placed_at=_at(20))
    assert (
        finished(generate_daily_sales_report.send(DAY.isoformat()).message_id).state == "succeeded"
    )

    # Then there is one report for DAY, replaced with the latest numbers, and one e-mail
    with session_scope() as s:
        report = s.get(SalesReport, DAY)
        assert (report.orders, report.revenue_cents, report.average_order_cents) == (4, 14000, 3500)
        assert (report.refunds, report.refunded_cents, report.version) == (1, 1500, 3)
        assert [(p["product_id"], p["units"], p["revenue_cents"]) for p in report.top_products] == [
            (pot_id, 2, 10000),
            (mug_id, 4, 4000),
        ]
    assert count(SalesReport) == 1
    assert notifications("daily_sales_report") == [(f"sales_report:{DAY.isoformat()}", None)]

    # And a malformed day fails at once, saying what is expected
    bad = finished(generate_daily_sales_report.send("last tuesday").message_id)
    assert (bad.state, bad.attempts) == ("failed", 1) and "YYYY-MM-DD" in bad.error


def test_rankings_weigh_views_and_purchases_in_the_window_and_feature_the_best(
    catalog, catalog_worker
):
    # Given: A has 30 recent views; B 2 recent purchases (worth 20 views); C 50 views but a month
    # ago (outside the 7-day window); D is inactive
    now = dt.datetime.now(dt.UTC)
    with session_scope() as s:
        a, b, c = (make_product(s) for _ in range(3))
        d = make_product(s, is_active=False)
        s.add_all([ProductView(product_id=a.id, viewed_at=now) for _ in range(30)])
        s.add_all(
            [ProductView(product_id=c.id, viewed_at=now - dt.timedelta(days=30)) for _ in range(50)]
        )
        make_order(s, lines=[(b, 2)], status="completed")
        ids = a.id, b.id, c.id, d.id

    # When the rankings are computed
    assert finished(update_product_rankings.send().message_id).state == "succeeded"

    # Then A ranks first, B second, C last among the active; the two with a score are featured
    with session_scope() as s:
        rows = {r.product_id: r for r in s.scalars(select(ProductRanking))}
    a_id, b_id, c_id, d_id = ids
    assert d_id not in rows
    assert [
        (rows[i].rank, rows[i].score, rows[i].views, rows[i].purchases) for i in (a_id, b_id, c_id)
    ] == [(1, 30, 30, 0), (2, 20, 0, 2), (3, 0, 0, 0)]
    assert [rows[i].is_featured for i in (a_id, b_id, c_id)] == [True, True, False]


def _export(params: dict) -> tuple[str, str]:
    with session_scope() as s:
        job = create_job(s, "export", params)
        return job.id, outbox.enqueue(s, export_data_async, job.id)


def test_an_export_is_streamed_to_storage_with_its_checksum_progress_and_a_download_email(
    catalog, catalog_worker
):
    # Given 1,200 orders (3 chunks of 500 for the workers) and 2 customers
    with session_scope() as s:
        users = [make_user(s) for _ in range(2)]
        product = make_product(s)
        for i in range(1200):
            make_order(s, users[i % 2], [(product, 1)], status="completed")

    # When orders are exported as CSV and customers as JSON lines
    csv_job, csv_message = _export({"kind": "orders", "format": "csv"})
    jsonl_job, _ = _export({"kind": "customers", "format": "jsonl"})
    finished(csv_message)

    # Then each file is in storage, whole (its SHA-256 matches), with every row, progress 100
    def done(job_id: str) -> Job:
        return wait_until(
            lambda: (j := _job(job_id)).status in ("succeeded", "failed") and j, 60, what="export"
        )

    for job_id, rows in ((csv_job, 1200), (jsonl_job, 2)):
        job = done(job_id)
        assert (job.status, job.progress, job.result["rows"]) == ("succeeded", 100, rows)
        with catalog["storage"].open(job.result["key"]) as f:
            raw = f.read()
        assert (
            hashlib.sha256(raw).hexdigest() == job.result["sha256"]
            and len(raw) == job.result["size"]
        )
    lines = list(csv.reader(io.StringIO(_read(catalog, csv_job))))
    assert (
        lines[0] == ["id", "user_id", "status", "total_cents", "currency", "placed_at"]
        and len(lines) == 1201
    )
    people = [json.loads(line) for line in _read(catalog, jsonl_job).splitlines()]
    assert sorted(p["id"] for p in people) == sorted(u.id for u in users)
    # and one download e-mail per export
    assert notifications("export_ready") == sorted(
        [(f"export:{csv_job}", None), (f"export:{jsonl_job}", None)]
    )


def test_an_export_of_an_unknown_kind_fails_at_once_and_the_job_says_why(catalog, catalog_worker):
    job_id, message_id = _export({"kind": "passwords"})
    failed = finished(message_id)
    assert (failed.state, failed.attempts) == ("failed", 1)
    job = _job(job_id)
    assert job.status == "failed" and "param 'kind' must be one of" in job.error


def _job(job_id: str) -> Job:
    with session_scope() as s:
        return s.get(Job, job_id)


def _read(catalog: dict, job_id: str) -> str:
    with catalog["storage"].open(_job(job_id).result["key"]) as f:
        return f.read().decode()
