"""Context of the export-ready e-mail: the download link and checksum, from the Job record."""

from __future__ import annotations

from sqlalchemy.orm import Session

from jobcore.errors import NotFound
from shop.models import Job

TEMPLATES: tuple[str, ...] = ("export_ready",)
SAMPLE: dict[str, object] = {
    "export": {
        "job_id": "6f1c0c1e-1b5e-4a53-9d0e-0d6a9c2b7f10",
        "kind": "orders",
        "format": "csv",
        "rows": 12345,
        "size_mb": "1.9",
        "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "url": "https://files.example.test/exports/6f1c0c1e.csv",
    }
}


def load(session: Session, ident: str) -> dict[str, object]:
    job = session.get(Job, ident)
    if job is None or job.job_type != "export":
        raise NotFound(f"export {ident!r} does not exist")
    result = job.result
    if not isinstance(result, dict) or "url" not in result:
        raise NotFound(f"export {ident!r} has no stored file yet")
    return {
        "export": {
            "job_id": job.id,
            "kind": result["kind"],
            "format": result["format"],
            "rows": result["rows"],
            "size_mb": f"{result['size'] / 1_000_000:.1f}",
            "sha256": result["sha256"],
            "url": result["url"],
        }
    }
