"""Deleting many rows without long transactions or long locks: one short transaction per batch.

Each batch locks at most ``batch`` rows with ``FOR UPDATE SKIP LOCKED``, so a cleanup never
waits on (or blocks) a row a live request holds; that row is simply left for the next run.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

from sqlalchemy import text

from jobcore.db import affected, session_scope


@dataclasses.dataclass
class BatchStats:
    removed: int = 0
    batches: int = 0
    largest_batch: int = 0
    by: Counter[str] = dataclasses.field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "removed": self.removed,
            "batches": self.batches,
            "largest_batch": self.largest_batch,
        }
        if self.by:
            out["by"] = dict(sorted(self.by.items()))
        return out


def delete_in_batches(
    table: str,
    where: str,
    params: dict[str, Any],
    *,
    batch: int,
    key: str = "id",
    group: str | None = None,
) -> BatchStats:
    """``DELETE FROM table WHERE where`` in batches of ``batch`` rows; ``group`` counts by an expression.

    ``table``, ``key``, ``where`` and ``group`` are SQL written in this package, never user input.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    returning = f"RETURNING ({group})::text" if group else ""
    statement = text(
        f"DELETE FROM {table} WHERE {key} IN ("
        f"SELECT {key} FROM {table} WHERE {where} ORDER BY {key} LIMIT :batch FOR UPDATE SKIP LOCKED"
        f") {returning}"
    )
    stats = BatchStats()
    while True:
        with session_scope() as s:
            result = s.execute(statement, {**params, "batch": batch})
            if group:
                groups = [row[0] for row in result]
                count = len(groups)
                stats.by.update(groups)
            else:
                count = affected(result)
        if count:
            stats.removed += count
            stats.batches += 1
            stats.largest_batch = max(stats.largest_batch, count)
        if count < batch:
            return stats
