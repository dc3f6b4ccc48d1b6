"""Bulk campaigns: one notification per user, fanned out in chunks, one completion callback.

- ``create_campaign`` freezes the audience (one ``notifications`` row per user, keyed
  ``campaign:<id>#<user>``) and queues one chunk message per ``chunk_size`` users.
- ``fan_out_chunk`` queues the deliveries of one chunk, once: the ``campaign_chunks`` primary
  key makes a redelivered chunk a no-op.
- Each delivery that settles (sent or failed, once: ``delivery.settle`` is conditional) adds
  to the campaign's counters; the one that makes ``sent + failed == total`` inserts the
  ``campaign_completions`` row (primary key: the campaign) and queues the callback in the same
  transaction. A duplicated final message cannot insert that row again, so the callback is
  queued once, ever.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import uuid

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from jobcore import outbox
from jobcore.db import affected, session_scope
from jobcore.errors import InvalidInput, NotFound
from shop.models import CampaignChunk, CampaignCompletion, Notification, NotificationCampaign
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
    for chunk in range(chunks):
        outbox.enqueue(session, CHUNK_ACTOR, campaign_id, chunk)
    if total == 0:
        _complete(session, campaign_id, 0, 0)
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
        for row in rows:
            outbox.enqueue(s, DELIVERY_ACTORS[row.channel], row.id)
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


def count_settled(session: Session, campaign_id: int, status: str) -> None:
    """Called once per settled notification, inside the transaction that settled it."""
    column = "sent" if status == "sent" else "failed"
    row = session.execute(
        update(NotificationCampaign)
        .where(NotificationCampaign.id == campaign_id)
        .values({column: getattr(NotificationCampaign, column) + 1})
        .returning(
            NotificationCampaign.sent, NotificationCampaign.failed, NotificationCampaign.total
        )
    ).first()
    if row is not None and row.sent + row.failed >= row.total:
        _complete(session, campaign_id, row.sent, row.failed)


def _complete(session: Session, campaign_id: int, sent: int, failed: int) -> None:
    callback_id = str(uuid.uuid5(NAMESPACE, f"campaign-completed:{campaign_id}"))
    inserted = session.execute(
        insert(CampaignCompletion)
        .values(campaign_id=campaign_id, sent=sent, failed=failed, callback_message_id=callback_id)
        .on_conflict_do_nothing()
        .returning(CampaignCompletion.campaign_id)
    ).first()
    if inserted is None:
        return
    session.execute(
        update(NotificationCampaign)
        .where(NotificationCampaign.id == campaign_id)
        .values(status="completed", completed_at=dt.datetime.now(dt.UTC))
    )
    outbox.enqueue(session, COMPLETED_ACTOR, campaign_id, message_id=callback_id)
    logger.info(
        "campaign %r settled: %d sent, %d failed; completion callback queued",
        campaign_id,
        sent,
        failed,
    )


def run_completion_callback(campaign_id: int) -> bool:
    """The callback: stamp the completion (once) and report to the administrators."""
    from shop.notifications.notifications import request_notification

    with session_scope() as s:
        ran = s.execute(
            update(CampaignCompletion)
            .where(
                CampaignCompletion.campaign_id == campaign_id,
                CampaignCompletion.callback_ran_at.is_(None),
            )
            .values(callback_ran_at=func.now())
            .returning(CampaignCompletion.campaign_id)
        ).first()
        if ran is None:
            exists = s.get(CampaignCompletion, campaign_id)
            if exists is None:
                raise NotFound(f"campaign {campaign_id} has not completed")
            return False
        request_notification(s, template="campaign_report", entity_key=f"campaign:{campaign_id}")
    logger.info("campaign %r completion callback ran", campaign_id)
    return True


def progress(session: Session, campaign_id: int) -> dict[str, int | str]:
    c = session.get(NotificationCampaign, campaign_id)
    if c is None:
        raise NotFound(f"campaign {campaign_id} does not exist")
    return {
        "status": c.status,
        "total": c.total,
        "chunks_done": c.chunks_done,
        "chunks_total": c.chunks_total,
        "sent": c.sent,
        "failed": c.failed,
    }
