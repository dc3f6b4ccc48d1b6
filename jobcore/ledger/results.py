"""The job ledger as Dramatiq's result backend: what job X returned, read from PostgreSQL.

Dramatiq keeps return values only through its ``Results`` middleware, whose backends need
Redis or Memcached; without it, every job that returns a value logs a warning and the value is
lost. The ledger already holds one row per message, so the value lives there (``result``),
written by JobStatus in the same commit as the job's ``succeeded`` state: no second write per
job, and a result is never visible before its outcome. ``Results(backend=LedgerResults())``
in the stack tells Dramatiq that results are kept, and ``message.get_result()`` reads them.

What it returns is what the ledger keeps: redacted, and past the size cap a marker
(``{"truncated": true, "bytes": N, "preview": ...}``). Rows live as long as the ledger keeps
them (its pruning policy), not ``result_ttl``.
"""

from __future__ import annotations

from typing import Any

from dramatiq.results import ResultBackend
from dramatiq.results.backend import Missing
from dramatiq.results.errors import ResultFailure
from sqlalchemy import select

from jobcore import db
from jobcore.ledger.states import State
from jobcore.models import LedgerEntry

#: Outcomes Dramatiq reports as "no value": a skipped message stores None in its backends too.
_NO_VALUE = frozenset({State.SKIPPED, State.CANCELLED})
_FAILED = frozenset({State.FAILED, State.DEAD})


class _Failure:
    """A failed job's error as the ledger recorded it (``Type: message``, redacted)."""

    def __init__(self, error: str | None) -> None:
        kind, _, text = (error or "").partition(": ")
        self.kind, self.text = kind or "Exception", text or (error or "")


class LedgerResults(ResultBackend):
    """Reads results from ``job_ledger`` by message id; JobStatus writes them.

    ``store_result`` and ``store_exception`` do nothing on purpose: the value is already in
    the ledger write that records the final state, and a second write here would cost a
    round trip per job.
    """

    def build_message_key(self, message: Any) -> str:
        return str(message.message_id)

    def store_result(self, message: Any, result: Any, ttl: int) -> None:
        return None

    def store_exception(self, message: Any, exception: Exception, ttl: int) -> None:
        return None

    def _get(self, message_key: str) -> Any:
        with db.get_engine().connect() as conn:
            row = conn.execute(
                select(LedgerEntry.state, LedgerEntry.result, LedgerEntry.error).where(
                    LedgerEntry.message_id == message_key
                )
            ).first()
        if row is None:
            return Missing
        state, result, error = row
        if state == State.SUCCEEDED:
            return result
        if state in _FAILED:
            return _Failure(error)
        if state in _NO_VALUE:
            return None
        return Missing  # enqueued, running, retrying: not yet

    def unwrap_result(self, res: Any) -> Any:
        if isinstance(res, _Failure):
            raise ResultFailure(f"actor raised {res.kind}: {res.text}", res.kind, res.text)
        return res
