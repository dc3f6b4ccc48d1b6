"""What the catalog jobs keep: sync runs and discrepancies, wait-lists, daily reports, rankings,
product images and the price feed's last known good values.

Every table has the key that makes its job idempotent: a sync run per message, one discrepancy
per (run, product), one wait-list entry per (product, user), one report per day, one image
variant per (product, source, variant), one value per feed.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from jobcore.models.base import Base


class InventorySyncRun(Base):
    """One pull of the warehouse's stock; ``run_key`` (the message id) makes a redelivery a no-op."""

    __tablename__ = "inventory_sync_runs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_key: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="running")
    pages: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    items: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    applied: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    discrepancies: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    unknown_skus: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    report_key: Mapped[str | None] = mapped_column(String(512))
    report_sha256: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class InventoryDiscrepancy(Base):
    """Our on-hand count (available + reserved) differed from the warehouse's in one run."""

    __tablename__ = "inventory_discrepancies"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("inventory_sync_runs.id", ondelete="CASCADE"), nullable=False
    )
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), nullable=False
    )
    ours: Mapped[int] = mapped_column(Integer, nullable=False)
    warehouse: Mapped[int] = mapped_column(Integer, nullable=False)

    __table_args__ = (
        UniqueConstraint("run_id", "product_id", name="uq_inventory_discrepancies_run_product"),
    )


class WaitListEntry(Base):
    """A customer waiting for a product; ``notified_restock`` says which restock told them."""

    __tablename__ = "wait_list"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), nullable=False
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    notified_restock: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    __table_args__ = (UniqueConstraint("product_id", "user_id", name="uq_wait_list_product_user"),)


class SalesReport(Base):
    """One row per day: a re-run replaces it (``version`` counts the runs)."""

    __tablename__ = "sales_reports"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    orders: Mapped[int] = mapped_column(Integer, nullable=False)
    revenue_cents: Mapped[int] = mapped_column(BigInteger, nullable=False)
    average_order_cents: Mapped[int] = mapped_column(BigInteger, nullable=False)
    refunds: Mapped[int] = mapped_column(Integer, nullable=False)
    refunded_cents: Mapped[int] = mapped_column(BigInteger, nullable=False)
    top_products: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    computed_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class ProductView(Base):
    """A product page view; rankings count them over a window."""

    __tablename__ = "product_views"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True, nullable=False
    )
    viewed_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )


class ProductRanking(Base):
    """The latest ranking of a product (rank 1 is the best); replaced on every computation."""

    __tablename__ = "product_rankings"

    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), primary_key=True
    )
    rank: Mapped[int] = mapped_column(Integer, nullable=False)
    score: Mapped[int] = mapped_column(BigInteger, nullable=False)
    views: Mapped[int] = mapped_column(Integer, nullable=False)
    purchases: Mapped[int] = mapped_column(Integer, nullable=False)
    is_featured: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    computed_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class ProductImage(Base):
    """One stored variant of one source image of a product."""

    __tablename__ = "product_images"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    product_id: Mapped[int | None] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    source_url: Mapped[str] = mapped_column(Text, nullable=False)
    variant: Mapped[str] = mapped_column(String(32), nullable=False)
    storage_key: Mapped[str] = mapped_column(String(512), nullable=False)
    url: Mapped[str] = mapped_column(Text, nullable=False)
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int] = mapped_column(Integer, nullable=False)
    format: Mapped[str] = mapped_column(String(8), nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    __table_args__ = (UniqueConstraint("storage_key", name="uq_product_images_storage_key"),)


class PriceFeed(Base):
    """The last known good value of a feed, where it came from and when; ``incident`` counts outages."""

    __tablename__ = "price_feeds"

    feed: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[decimal.Decimal | None] = mapped_column(Numeric(18, 8))
    source: Mapped[str | None] = mapped_column(String(64))
    as_of: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    fetched_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    incident: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    alerting: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    last_error: Mapped[str | None] = mapped_column(Text)
    checked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
