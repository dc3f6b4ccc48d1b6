"""``shopjobs notifications``: delivery states, one campaign's progress, and resending a failed one."""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy import func, select, update

from jobcore.cli.output import emit, emit_record
from jobcore.db import session_scope
from jobcore.errors import InvalidInput, NotFound
from shop.models import Notification
from shop.models.notifications import NOTIFICATION_STATES

COLUMNS = (
    "id",
    "channel",
    "template",
    "entity_key",
    "user_id",
    "status",
    "attempts",
    "last_error",
    "created_at",
)


def register(groups: Any) -> None:
    parser = groups.add_parser(
        "notifications", help="e-mail/SMS notifications: states, campaigns, resend"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="newest notifications first")
    listing.add_argument("--status", choices=NOTIFICATION_STATES)
    listing.add_argument("--template")
    listing.add_argument("--channel", choices=("email", "sms"))
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=run_list)
    stats = commands.add_parser("stats", help="counts by channel and state")
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(run=run_stats)
    campaign = commands.add_parser("campaign", help="a campaign's progress and completion")
    campaign.add_argument("campaign_id", type=int)
    campaign.add_argument("--json", action="store_true")
    campaign.set_defaults(run=run_campaign)
    resend = commands.add_parser(
        "resend", help="queue a failed notification again (after fixing its cause)"
    )
    resend.add_argument("notification_id", type=int)
    resend.set_defaults(run=run_resend)


def run_list(args: argparse.Namespace) -> int:
    query = select(Notification).order_by(Notification.id.desc()).limit(max(1, args.limit))
    for column, value in (
        ("status", args.status),
        ("template", args.template),
        ("channel", args.channel),
    ):
        if value:
            query = query.where(getattr(Notification, column) == value)
    with session_scope() as s:
        rows = [{c: getattr(n, c) for c in COLUMNS} for n in s.scalars(query)]
    emit(rows, as_json=args.json, columns=COLUMNS)
    return 0


def run_stats(args: argparse.Namespace) -> int:
    with session_scope() as s:
        rows = [
            {"channel": c, "status": st, "count": n}
            for c, st, n in s.execute(
                select(Notification.channel, Notification.status, func.count())
                .group_by(Notification.channel, Notification.status)
                .order_by(Notification.channel, Notification.status)
            )
        ]
    emit(rows, as_json=args.json, columns=("channel", "status", "count"))
    return 0


def run_campaign(args: argparse.Namespace) -> int:
    from shop.notifications import campaigns

    with session_scope() as s:
        record: dict[str, Any] = {
            "campaign_id": args.campaign_id,
            **campaigns.progress(s, args.campaign_id),
        }
    emit_record(record, as_json=args.json)
    return 0


def run_resend(args: argparse.Namespace) -> int:
    from shop.notifications.dispatch import enqueue_delivery

    with session_scope() as s:
        row = s.execute(
            update(Notification)
            .where(Notification.id == args.notification_id, Notification.status == "failed")
            .values(status="pending", settled_at=None)
            .returning(Notification.channel, Notification.campaign_id)
        ).first()
        if row is None:
            if s.get(Notification, args.notification_id) is None:
                raise NotFound(f"notification {args.notification_id} does not exist")
            raise InvalidInput(
                f"notification {args.notification_id} has not failed; only failed ones are resent"
            )
        # a campaign's row is resent outside its group: the group counted the failure once
        # and the campaign's figures are its run's; the row itself says how the resend went
        enqueue_delivery(s, args.notification_id, row.channel)
    print(f"notification {args.notification_id} queued again")
    return 0
