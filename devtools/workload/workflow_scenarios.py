"""The workflow primitives in the main job: unique sends, and the limits the shop's calls take."""

from __future__ import annotations

import random

from sqlalchemy import text

from devtools.workload.seed import Seeded
from devtools.workload.sent import Sent
from jobcore import outbox
from jobcore.db import session_scope

UNIQUE_PREFIX = "workload:availability:"
_sent = {"sends": 0}


def unique_sends(rng: random.Random, seeded: Seeded) -> Sent:
    """A storefront asks 60 times for 6 products' availability while the first asks are pending:
    one job per product, every duplicate gets the pending job's id."""
    from actors.inventory import update_product_availability

    sent = Sent("workflow: unique availability updates")
    products = rng.sample(seeded.product_ids, 6)
    ids: set[str] = set()
    for i in range(60):
        product = products[i % 6]
        with session_scope() as s:
            ids.add(
                outbox.enqueue(
                    s,
                    update_product_availability,
                    product,
                    unique_key=f"{UNIQUE_PREFIX}{product}",
                    unique_for=600_000,
                )
            )
        _sent["sends"] += 1
    sent.message_ids.extend(sorted(ids))
    return sent


def summary_lines() -> list[str]:
    with session_scope() as s:
        keys, jobs = s.execute(
            text(
                "SELECT count(*), count(j.message_id) FROM job_unique_keys k"
                " LEFT JOIN job_ledger j USING (message_id) WHERE k.key LIKE :prefix"
            ),
            {"prefix": UNIQUE_PREFIX + "%"},
        ).one()
        slots = s.execute(
            text(
                "SELECT key, count(*), count(holder) FILTER (WHERE expires_at > now())"
                " FROM job_limit_slots GROUP BY key ORDER BY key"
            )
        ).all()
        buckets = s.execute(text("SELECT key FROM job_rate_buckets ORDER BY key")).scalars().all()
    lines = [f"unique jobs: {_sent['sends']} sends of {keys} keys -> {jobs} jobs"]
    held = ", ".join(f"{key} {n} slots ({busy} held now)" for key, n, busy in slots) or "none used"
    lines.append(f"limits: concurrency {held}; rate buckets {', '.join(buckets) or 'none used'}")
    return lines
