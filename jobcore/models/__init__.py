"""The core's tables: the job ledger, the outbox, dead letters, the audit log, worker processes.

The domain's tables share this ``Base`` (one metadata, one migration chain).
"""

from jobcore.models.audit import AuditLog
from jobcore.models.base import Base, Timestamped, utcnow
from jobcore.models.dead_letters import REASONS, CrashSuspect, DeadLetter, RequeuedMessage
from jobcore.models.ledger import FINAL_STATES, LEDGER_STATES, LedgerEntry, OutboxMessage
from jobcore.models.workers import WorkerProcess
from jobcore.models.workflow import (
    JobGroup,
    JobGroupMember,
    LimitSlot,
    RateBucket,
    UniqueKey,
)

__all__ = [
    "FINAL_STATES",
    "LEDGER_STATES",
    "REASONS",
    "AuditLog",
    "Base",
    "CrashSuspect",
    "DeadLetter",
    "JobGroup",
    "JobGroupMember",
    "LedgerEntry",
    "LimitSlot",
    "OutboxMessage",
    "RateBucket",
    "RequeuedMessage",
    "Timestamped",
    "UniqueKey",
    "WorkerProcess",
    "utcnow",
]
