"""Exports of orders, customers or products as CSV or JSON lines (the Job record's ``export`` type).

Rows come through a server-side cursor (``yield_per``) and are encoded chunk by chunk straight
into the storage backend, which hashes as it writes: memory stays flat however many rows there
are. Progress is written to the Job record per chunk; when the file is stored, the requester (or
the administrators) are asked an e-mail with the download link, once per job.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

from sqlalchemy import func, select, update

from jobcore.db import session_scope
from jobcore.errors import InvalidInput
from shop.integrations import files
from shop.job_records import Progress, current_job_id, job_handler
from shop.models import Job, Order, Product, User
from shop.notifications.notifications import request_notification
from shop.settings import current as current_settings

log = logging.getLogger(__name__)
TEMPLATE = "export_ready"
# what each kind exports, in column order
COLUMNS: dict[str, tuple[Any, ...]] = {
    "orders": (
        Order.id,
        Order.user_id,
        Order.status,
        Order.total_cents,
        Order.currency,
        Order.placed_at,
    ),
    "customers": (User.id, User.email, User.full_name, User.locale, User.created_at),
    "products": (
        Product.id,
        Product.sku,
        Product.name,
        Product.price_cents,
        Product.currency,
        Product.is_active,
    ),
}
FORMATS = {"csv": "text/csv", "jsonl": "application/x-ndjson"}


def _params(params: dict[str, Any]) -> tuple[str, str]:
    kind, fmt = params.get("kind"), params.get("format", "csv")
    if kind not in COLUMNS:
        raise InvalidInput(f"param 'kind' must be one of {sorted(COLUMNS)}, got {kind!r}")
    if fmt not in FORMATS:
        raise InvalidInput(f"param 'format' must be one of {sorted(FORMATS)}, got {fmt!r}")
    return kind, fmt


def _cell(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (dt.datetime, dt.date)) else value


def encode_rows(
    kind: str,
    fmt: str,
    chunk_rows: int,
    progress: Progress | None = None,
    tally: dict[str, int] | None = None,
) -> Iterator[bytes]:
    """The export as byte chunks, one per ``chunk_rows`` rows, read with a server-side cursor.

    ``tally["rows"]`` counts the rows written so far (for the caller's result).
    """
    tally = {} if tally is None else tally
    columns = COLUMNS[kind]
    names = [c.key for c in columns]
    with session_scope() as s:
        total = s.scalar(select(func.count()).select_from(columns[0].class_)) or 0
        result = s.execute(
            select(*columns)
            .order_by(columns[0])
            .execution_options(yield_per=chunk_rows, stream_results=True)
        )
        if fmt == "csv":
            yield (",".join(names) + "\n").encode()
        done = 0
        for rows in result.partitions():
            buffer = io.StringIO()
            if fmt == "csv":
                writer = csv.writer(buffer, lineterminator="\n")
                writer.writerows([[_cell(v) for v in row] for row in rows])
            else:
                for row in rows:
                    buffer.write(
                        json.dumps(
                            dict(zip(names, map(_cell, row), strict=True)), ensure_ascii=False
                        )
                    )
                    buffer.write("\n")
            yield buffer.getvalue().encode()
            done += len(rows)
            tally["rows"] = done
            if progress is not None and total:
                progress(min(99, done * 100 // total))
        tally["rows"] = done


@job_handler("export")
def export_data(params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Stream the export to storage and ask for the download-link e-mail."""
    kind, fmt = _params(params)
    job_id = current_job_id()
    chunk_rows = current_settings().export_chunk_rows
    tally = {"rows": 0}
    storage = files.storage()
    stored = storage.put(
        f"exports/{job_id}.{fmt}",
        encode_rows(kind, fmt, chunk_rows, progress, tally),
        content_type=FORMATS[fmt],
    )
    result = {
        "kind": kind,
        "format": fmt,
        "rows": tally["rows"],
        "key": stored.key,
        "size": stored.size,
        "sha256": stored.sha256,
        "url": storage.url(stored.key),
    }
    with session_scope() as s:
        requested_by = s.scalar(
            update(Job).where(Job.id == job_id).values(result=result).returning(Job.requested_by)
        )
        request_notification(
            s, template=TEMPLATE, entity_key=f"export:{job_id}", user_id=requested_by
        )
    log.info("export %r: %r %s rows as %s, %r bytes", job_id, tally["rows"], kind, fmt, stored.size)
    return result
