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
from shop.models.dead_letters import DeadLetter, RequeuedMessage
from shop.models.jobs import FINAL_STATES, LEDGER_STATES, Job, LedgerEntry, OutboxMessage
from shop.models.notifications import EmailLog, Notification
from shop.models.orders import InventoryReservation, Order, OrderLine, Payment, PaymentEvent, Refund
from shop.models.scheduling import ScheduleFire, SchedulerLeader, ScheduleState
from shop.models.subscriptions import Subscription

__all__ = [
    "AuditLog", "Base", "DeadLetter", "RequeuedMessage", "Cart", "CartItem", "EmailLog", "FINAL_STATES", "Inventory",
    "InventoryReservation", "Job", "LEDGER_STATES", "LedgerEntry", "Notification", "Order",
    "OrderLine", "OutboxMessage", "Payment", "PaymentEvent", "Product", "Refund", "ScheduleFire",
    "ScheduleState", "SchedulerLeader", "Subscription", "Token",
    "User", "UserSession",
    "InventoryDiscrepancy", "InventorySyncRun", "PriceFeed", "ProductImage", "ProductRanking", "ProductView",
    "SalesReport", "WaitListEntry",
]
