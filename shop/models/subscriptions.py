"""Recurring deliveries of one product."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from shop.models.base import Base, Timestamped


class Subscription(Timestamped, Base):
    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    frequency: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="active")
    next_delivery_date: Mapped[dt.date] = mapped_column(Date, nullable=False, index=True)

    __table_args__ = (
        CheckConstraint("frequency IN ('weekly', 'biweekly', 'monthly')", name="frequency_known"),
        CheckConstraint("status IN ('active', 'paused', 'cancelled')", name="status_known"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )
