"""The shop's stranded work: orders that are not settled and that no job will move on.

An order in ``pending``, ``paid``, ``reserved`` or ``fulfilling`` is on its way through the
pipeline; one that has sat there for N seconds with no job of its own pending (``scheduled``,
``enqueued``, ``running``, ``retrying`` in the ledger: ``jobcore.ledger.states.OPEN``) will stay there for good. ``completed``,
``cancelled``, ``shipped`` and ``delivered`` are settled (tracking moves a shipped order on
from the carrier's side).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from jobcore.ledger.states import OPEN, sql_list

UNSETTLED = ("pending", "paid", "reserved", "fulfilling")

STRANDED_ORDERS_SQL = f"""
SELECT o.id AS order_id, o.status, EXTRACT(EPOCH FROM now() - o.updated_at) AS age_s
FROM orders o
WHERE o.status = ANY(:unsettled)
  AND o.updated_at < now() - make_interval(secs => :older_than_s)
  AND NOT EXISTS (
    SELECT 1 FROM job_ledger j
    WHERE j.order_id = o.id AND j.state IN {sql_list(OPEN)})
ORDER BY o.id
LIMIT 1000
"""


def stranded_orders(session: Session, older_than_s: float) -> list[dict[str, Any]]:
    """Unsettled orders untouched for ``older_than_s`` seconds with no pending job."""
    params = {"unsettled": list(UNSETTLED), "older_than_s": older_than_s}
    return [dict(r._mapping) for r in session.execute(text(STRANDED_ORDERS_SQL), params)]
