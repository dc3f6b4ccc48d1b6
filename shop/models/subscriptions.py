"""Recurring deliveries of one product."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from jobcore.models.base import Base, Timestamped


class Subscription(Timestamped, Base):
    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    frequency: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="active")
    next_delivery_date: Mapped[dt.date] = mapped_column(Date, nullable=False, index=True)
    # the day of month monthly renewals keep (Jan 31 -> Feb 28 -> Mar 31); None: the date's own day
    anchor_day: Mapped[int | None] = mapped_column(SmallInteger)

    __table_args__ = (
        CheckConstraint("frequency IN ('weekly', 'biweekly', 'monthly')", name="frequency_known"),
        CheckConstraint("status IN ('active', 'paused', 'cancelled')", name="status_known"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )


class SubscriptionDelivery(Base):
    """One row per (subscription, due date): the key that makes a renewal happen exactly once.

    It is inserted in the same transaction that creates the order and advances the date, so a
    second run (or a redelivery after a crash) finds it and does nothing.
    """

    __tablename__ = "subscription_deliveries"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"), nullable=False
    )
    due_date: Mapped[dt.date] = mapped_column(Date, nullable=False)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    __table_args__ = (
        UniqueConstraint("subscription_id", "due_date", name="uq_subscription_deliveries_due"),
        CheckConstraint("outcome IN ('ordered', 'out_of_stock')", name="outcome_known"),
    )
