"""Notifications about the shop's Job records (a long job finished)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from jobcore.errors import NotFound
from shop.models import Job
from shop.settings import current as current_settings

TEMPLATES: tuple[str, ...] = ("job_finished",)
SAMPLE: dict[str, Any] = {
    "job": {
        "id": "0b7e…",
        "type": "sales_report",
        "status": "succeeded",
        "url": "https://shop.example.test/jobs/0b7e",
    },
}


def load(session: Session, ident: str) -> dict[str, Any]:
    job = session.get(Job, ident)
    if job is None:
        raise NotFound(f"job {ident} does not exist")
    base = current_settings().shop_base_url.rstrip("/")
    return {
        "job": {
            "id": job.id,
            "type": job.job_type,
            "status": job.status,
            "url": f"{base}/jobs/{job.id}",
        }
    }
