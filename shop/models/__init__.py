"""The shop's tables, importable from one place. They share the core's ``Base``, so Alembic reads
every table, the core's included, from ``Base.metadata`` once this package is imported."""

from jobcore.models.base import Base
from shop.models.accounts import Token, User, UserSession
from shop.models.carts import Cart, CartItem
from shop.models.catalog import Inventory, Product
from shop.models.catalog_jobs import (
    InventoryDiscrepancy,
    InventorySyncRun,
    PriceFeed,
    ProductImage,
    ProductRanking,
    ProductView,
    SalesReport,
    WaitListEntry,
)
from shop.models.jobs import Job
from shop.models.notifications import (
    CampaignChunk,
    EmailLog,
    Notification,
    NotificationCampaign,
    NotificationSchedule,
)
from shop.models.ops import Backup, HealthCheck, OpsRun
from shop.models.orders import InventoryReservation, Order, OrderLine, Payment, PaymentEvent, Refund
from shop.models.scheduling import ScheduleFire, SchedulerLeader, ScheduleState
from shop.models.subscriptions import Subscription, SubscriptionDelivery

__all__ = [
    "Backup",
    "Base",
    "CampaignChunk",
    "Cart",
    "CartItem",
    "EmailLog",
    "HealthCheck",
    "Inventory",
    "InventoryDiscrepancy",
    "InventoryReservation",
    "InventorySyncRun",
    "Job",
    "Notification",
    "NotificationCampaign",
    "NotificationSchedule",
    "OpsRun",
    "Order",
    "OrderLine",
    "Payment",
    "PaymentEvent",
    "PriceFeed",
    "Product",
    "ProductImage",
    "ProductRanking",
    "ProductView",
    "Refund",
    "SalesReport",
    "ScheduleFire",
    "ScheduleState",
    "SchedulerLeader",
    "Subscription",
    "SubscriptionDelivery",
    "Token",
    "User",
    "UserSession",
    "WaitListEntry",
]
