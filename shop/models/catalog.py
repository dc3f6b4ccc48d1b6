"""Products and their stock. Stock can never go negative: the database refuses it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from jobcore.models.base import Base, Timestamped


class Product(Timestamped, Base):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    price_cents: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False, server_default="EUR")
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    low_stock_threshold: Mapped[int] = mapped_column(Integer, nullable=False, server_default="5")
    # [07]: stored image variants, and the full-text column search reads (NULL while unavailable)
    image_urls: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, nullable=False, server_default="[]"
    )
    search_vector: Mapped[Any | None] = mapped_column(TSVECTOR)

    __table_args__ = (
        CheckConstraint("price_cents >= 0", name="price_not_negative"),
        Index("ix_products_search_vector", "search_vector", postgresql_using="gin"),
    )


class Inventory(Base):
    """On-hand stock split into what is free (available) and what orders hold (reserved)."""

    __tablename__ = "inventory"

    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), primary_key=True
    )
    available: Mapped[int] = mapped_column(Integer, nullable=False)
    reserved: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    low_stock_alerted: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    # [07]: counters that give each low-stock crossing and each restock its own notification key
    low_stock_crossings: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    restocks: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        CheckConstraint("available >= 0", name="available_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
    )
