"""Bulk campaigns: the announcement each user gets, and the report to administrators."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from jobcore.errors import NotFound
from shop.models import NotificationCampaign
from shop.notifications.contexts._common import int_ident

TEMPLATES: tuple[str, ...] = ("campaign_announcement", "campaign_report")
SAMPLE: dict[str, Any] = {
    "campaign": {
        "id": 3,
        "name": "winter-sale",
        "headline": "Winter sale: 20% off",
        "body": "Everything warm is 20% off until Sunday.",
        "total": 2000,
        "sent": 1998,
        "failed": 2,
    },
}


def load(session: Session, ident: str) -> dict[str, Any]:
    campaign_id = int_ident(ident, "campaign")
    c = session.get(NotificationCampaign, campaign_id)
    if c is None:
        raise NotFound(f"campaign {campaign_id} does not exist")
    return {
        "campaign": {
            "id": c.id,
            "name": c.name,
            "headline": c.headline,
            "body": c.body,
            "total": c.total,
            "sent": c.sent,
            "failed": c.failed,
        }
    }
