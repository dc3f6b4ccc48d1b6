"""All tables, importable from one place (Alembic reads ``Base.metadata`` from here)."""

from shop.models.accounts import Token, User, UserSession
from shop.models.audit import AuditLog
from shop.models.base import Base
from shop.models.carts import Cart, CartItem
from shop.models.catalog import Inventory, Product
from shop.models.catalog_jobs import (
    InventoryDiscrepancy, InventorySyncRun, PriceFeed, ProductImage, ProductRanking, ProductView, SalesReport,
    WaitListEntry,
)
from shop.models.dead_letters import CrashSuspect, DeadLetter, RequeuedMessage
from shop.models.jobs import FINAL_STATES, LEDGER_STATES, Job, LedgerEntry, OutboxMessage
from shop.models.notifications import (
    CampaignChunk,
    CampaignCompletion,
    EmailLog,
    Notification,
    NotificationCampaign,
    NotificationSchedule,
)
from shop.models.ops import Backup, HealthCheck, OpsRun
from shop.models.orders import InventoryReservation, Order, OrderLine, Payment, PaymentEvent, Refund
from shop.models.scheduling import ScheduleFire, SchedulerLeader, ScheduleState
from shop.models.subscriptions import Subscription, SubscriptionDelivery
from shop.models.workers import WorkerProcess

__all__ = [
    "FINAL_STATES",
    "LEDGER_STATES",
    "AuditLog",
    "Backup",
    "Base",
    "CampaignChunk",
    "CampaignCompletion",
    "Cart",
    "CartItem",
    "CrashSuspect",
    "DeadLetter",
    "EmailLog",
    "HealthCheck",
    "Inventory",
    "InventoryDiscrepancy",
    "InventoryReservation",
    "InventorySyncRun",
    "Job",
    "LedgerEntry",
    "Notification",
    "NotificationCampaign",
    "NotificationSchedule",
    "OpsRun",
    "Order",
    "OrderLine",
    "OutboxMessage",
    "Payment",
    "PaymentEvent",
    "PriceFeed",
    "Product",
    "ProductImage",
    "ProductRanking",
    "ProductView",
    "Refund",
    "RequeuedMessage",
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
    "WorkerProcess",
]
