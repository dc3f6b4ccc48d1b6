"""Live worker processes, so an operator can see what runs where (``shopjobs workers``)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Integer, String, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from jobcore.models.base import Base


class WorkerProcess(Base):
    """One row per worker process, refreshed by its heartbeat and removed at a clean shutdown;
    a process killed outright leaves a row whose heartbeat stops, which the CLI shows as gone."""

    __tablename__ = "worker_processes"

    name: Mapped[str] = mapped_column(
        String(120), primary_key=True
    )  # host:pid, as in job_ledger.worker
    host: Mapped[str] = mapped_column(String(255), nullable=False)
    pid: Mapped[int] = mapped_column(Integer, nullable=False)
    queues: Mapped[list[str]] = mapped_column(
        ARRAY(String(120)), nullable=False, server_default="{}"
    )
    threads: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    # messages delivered to the process and not yet acked, by queue, as of its last heartbeat
    held: Mapped[dict[str, int]] = mapped_column(JSONB, nullable=False, server_default="{}")
    # the ids of those messages (jobcore.ledger.lost: a job whose id a live process holds waits)
    held_ids: Mapped[list[str]] = mapped_column(JSONB, nullable=False, server_default="[]")
    started_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    heartbeat_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
