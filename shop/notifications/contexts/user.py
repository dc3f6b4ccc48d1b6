"""User notifications: welcome (signed, expiring verification link) and birthday greetings."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from jobcore.errors import NotFound
from shop.models import User
from shop.notifications.contexts._common import int_ident
from shop.notifications.links import verification_url
from shop.settings import current as current_settings

TEMPLATES: tuple[str, ...] = ("welcome", "birthday_greeting")
SAMPLE: dict[str, Any] = {
    "user": {
        "id": 7,
        "verify_url": "https://shop.example.test/verify-email?token=7.1790000000.abc",
        "verify_expires": "2026-11-25",
        "birthday_code": "BDAY-7",
    },
}


def load(session: Session, ident: str) -> dict[str, Any]:
    user_id = int_ident(ident, "user")
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    s = current_settings()
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=s.verification_ttl_s)
    return {
        "user": {
            "id": user.id,
            "verify_url": verification_url(
                s.shop_base_url, s.verification_secret, user.id, s.verification_ttl_s
            ),
            "verify_expires": expires.date().isoformat(),
            "birthday_code": f"BDAY-{user.id}",
        }
    }
