"""Queue names, from one enum: one queue per workload, so a flood of e-mails never delays payments."""

from __future__ import annotations

import enum


class Queue(enum.StrEnum):
    ORDERS = "orders"
    PAYMENTS = "payments"
    INVENTORY = "inventory"
    NOTIFICATIONS = "notifications"
    MAINTENANCE = "maintenance"
    REPORTS = "reports"
    MEDIA = "media"
