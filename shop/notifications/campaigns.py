"""Bulk campaigns: one notification per user, fanned out in chunks, settled by a job group.

- ``create_campaign`` freezes the audience (one ``notifications`` row per user, keyed
  ``campaign:<id>#<user>``), opens the campaign's group (``jobcore.groups``: a barrier of
  ``total`` children whose ``on_settled`` callback is ``notifications.campaign_completed``)
  and queues one chunk message per ``chunk_size`` users.
- ``fan_out_chunk`` sends the deliveries of one chunk into the group, once: the
  ``campaign_chunks`` primary key makes a redelivered chunk a no-op, and each delivery's
  message id is derived from its notification, so a delivery sent again (a chunk twice, the
  sweep re-queueing a lost one) is the same child and counts once.
- A delivery's final ledger state counts in the group in the commit that records it; its
  retries keep its message id (Retries re-enqueues the same message through the durable send
  path), and a duplicate or redelivered copy finishes only once the notification row has
  settled, with the row's outcome (``delivery.deliver``). The commit that counts the last child
  writes the callback's send: exactly once, ever. No counter or completion table of its own.
"""

from __future__ import annotations

import logging
import math
import uuid

from dramatiq import Message
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from jobcore import groups, outbox, routing
from jobcore.db import affected, session_scope
from jobcore.errors import InvalidInput, NotFound
from shop.models import CampaignChunk, Notification, NotificationCampaign
from shop.notifications.dispatch import DELIVERY_ACTORS

logger = logging.getLogger(__name__)
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "campaigns.shopjobs")
CHUNK_ACTOR = "notifications.campaign_chunk"
COMPLETED_ACTOR = "notifications.campaign_completed"

_AUDIENCE = text(
    """
    INSERT INTO notifications (user_id, channel, template, entity_key, campaign_id, status, enqueued_at)
    SELECT u.id, :channel, :template, 'campaign:' || :cid || '#' || u.id, :cid, 'pending', now()
    FROM users u
    WHERE NOT u.is_admin AND (CASE WHEN :channel = 'sms' THEN u.notify_sms AND u.phone IS NOT NULL
                                   ELSE u.notify_email END)
    ORDER BY u.id
    ON CONFLICT ON CONSTRAINT uq_notifications_template_entity DO NOTHING
    """
)


def create_campaign(
    session: Session,
    *,
    name: str,
    headline: str,
    body: str,
    template: str = "campaign_announcement",
    channel: str = "email",
    chunk_size: int = 200,
) -> int:
    """Create the campaign and its audience, and queue its chunks (after the caller's COMMIT)."""
    if not name or not headline or not body:
        raise InvalidInput("a campaign needs a name, a headline and a body")
    if chunk_size < 1:
        raise InvalidInput("chunk_size must be positive")
    campaign_id = session.execute(
        insert(NotificationCampaign)
        .values(
            name=name,
            template=template,
            channel=channel,
            headline=headline,
            body=body,
            chunk_size=chunk_size,
        )
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(NotificationCampaign.id)
    ).scalar()
    if campaign_id is None:
        raise InvalidInput(f"a campaign named {name!r} exists already")
    total = affected(
        session.execute(_AUDIENCE, {"channel": channel, "template": template, "cid": campaign_id})
    )
    chunks = math.ceil(total / chunk_size)
    session.execute(
        update(NotificationCampaign)
        .where(NotificationCampaign.id == campaign_id)
        .values(total=total, chunks_total=chunks)
    )
    callback = routing.routes().message(COMPLETED_ACTOR, (campaign_id,))
    if total == 0:  # nothing to wait for (a group needs a child): the callback goes at once
        outbox.enqueue(session, COMPLETED_ACTOR, campaign_id, message_id=callback.message_id)
    else:
        groups.open_group(session, total, group_id=group_id(campaign_id), on_settled=callback)
    for chunk in range(chunks):
        outbox.enqueue(session, CHUNK_ACTOR, campaign_id, chunk)
    logger.info("campaign %r created: %d recipients in %d chunks", campaign_id, total, chunks)
    return int(campaign_id)


def fan_out_chunk(campaign_id: int, chunk: int) -> int:
    """Queue the deliveries of chunk ``chunk``; 0 when this chunk was already fanned out."""
    with session_scope() as s:
        campaign = s.get(NotificationCampaign, campaign_id)
        if campaign is None:
            raise NotFound(f"campaign {campaign_id} does not exist")
        if not 0 <= chunk < max(campaign.chunks_total, 1):
            raise InvalidInput(f"campaign {campaign_id} has no chunk {chunk}")
        first = s.execute(
            insert(CampaignChunk)
            .values(campaign_id=campaign_id, chunk=chunk, queued=0)
            .on_conflict_do_nothing()
            .returning(CampaignChunk.chunk)
        ).first()
        if first is None:
            logger.info("campaign %r chunk %r was fanned out already", campaign_id, chunk)
            return 0
        rows = s.execute(
            select(Notification.id, Notification.channel)
            .where(Notification.campaign_id == campaign_id)
            .order_by(Notification.id)
            .offset(chunk * campaign.chunk_size)
            .limit(campaign.chunk_size)
        ).all()
        groups.add(s, group_id(campaign_id), [delivery(r.id, r.channel) for r in rows])
        s.execute(
            update(Notification)
            .where(Notification.id.in_([r.id for r in rows]))
            .values(enqueued_at=func.now())
        )
        s.execute(
            update(CampaignChunk)
            .where(CampaignChunk.campaign_id == campaign_id, CampaignChunk.chunk == chunk)
            .values(queued=len(rows))
        )
        s.execute(
            update(NotificationCampaign)
            .where(NotificationCampaign.id == campaign_id)
            .values(chunks_done=NotificationCampaign.chunks_done + 1)
        )
    logger.info("campaign %r chunk %r: %d deliveries queued", campaign_id, chunk, len(rows))
    return len(rows)


def group_id(campaign_id: int) -> str:
    """The campaign's job group (derived: no column to keep in step)."""
    return str(uuid.uuid5(NAMESPACE, f"campaign:{campaign_id}"))


def delivery(notification_id: int, channel: str) -> Message[object]:
    """The delivery message of a campaign's notification: its id is derived from the row, so
    every send of it (the chunk, the sweep) is the same child of the campaign's group."""
    message = routing.routes().message(DELIVERY_ACTORS[channel], (notification_id,))
    return message.copy(message_id=str(uuid.uuid5(NAMESPACE, f"delivery:{notification_id}")))


def requeue(session: Session, campaign_id: int, notification_id: int, channel: str) -> str:
    """The sweep's re-queue of a campaign delivery: the same child again, never a new one."""
    (message_id,) = groups.add(session, group_id(campaign_id), [delivery(notification_id, channel)])
    session.execute(
        update(Notification)
        .where(Notification.id == notification_id)
        .values(enqueued_at=func.now())
    )
    return message_id


def run_completion_callback(campaign_id: int) -> bool:
    """The group's ``on_settled`` callback: mark the campaign completed with the group's counts
    and report to the administrators (once: a redelivered callback finds it completed)."""
    from shop.notifications.notifications import request_notification

    with session_scope() as s:
        counted = groups.progress(s, group_id(campaign_id))
        sent, failed = (counted["succeeded"], counted["failed"]) if counted else (0, 0)
        if counted is not None and counted["pending"]:
            raise NotFound(f"campaign {campaign_id} has not settled yet")
        ran = s.execute(
            update(NotificationCampaign)
            .where(
                NotificationCampaign.id == campaign_id,
                NotificationCampaign.status != "completed",
            )
            .values(status="completed", completed_at=func.now(), sent=sent, failed=failed)
            .returning(NotificationCampaign.id)
        ).first()
        if ran is None:
            if s.get(NotificationCampaign, campaign_id) is None:
                raise NotFound(f"campaign {campaign_id} does not exist")
            return False
        request_notification(s, template="campaign_report", entity_key=f"campaign:{campaign_id}")
    logger.info("campaign %r settled: %d sent, %d failed; reported", campaign_id, sent, failed)
    return True


def progress(session: Session, campaign_id: int) -> dict[str, int | str]:
    c = session.get(NotificationCampaign, campaign_id)
    if c is None:
        raise NotFound(f"campaign {campaign_id} does not exist")
    counted = groups.progress(session, group_id(campaign_id))
    return {
        "status": c.status,
        "total": c.total,
        "chunks_done": c.chunks_done,
        "chunks_total": c.chunks_total,
        "sent": counted["succeeded"] if counted else c.sent,
        "failed": counted["failed"] if counted else c.failed,
        "pending": counted["pending"] if counted else 0,
        "group_id": group_id(campaign_id),
        "callback": counted["fired"] if counted else "none",
    }
