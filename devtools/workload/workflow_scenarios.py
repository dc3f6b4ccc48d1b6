"""The workflow primitives in the main job: unique sends, a group, the limits the shop's calls take."""

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


def availability_group(rng: random.Random, seeded: Seeded) -> Sent:
    """A catalog import recomputes 40 products' availability as one group; once all of them
    have settled, one more recompute runs as the group's on_settled and on_success callbacks."""
    from actors.inventory import update_product_availability
    from jobcore.groups import group

    sent = Sent("workflow: a group of availability updates")
    products = rng.sample(seeded.product_ids, 40)
    g = group(
        [update_product_availability.message(p) for p in products],
        on_settled=update_product_availability.message(products[0]),
        on_success=update_product_availability.message(products[1]),
    )
    with session_scope() as s:
        g.enqueue(s)
    sent.message_ids.extend(m.message_id for m in g.children)
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
        groups = s.execute(
            text(
                "SELECT count(*), sum(total), sum(succeeded), sum(failed),"
                " count(*) FILTER (WHERE settled_at IS NOT NULL),"
                " count(*) FILTER (WHERE fired IS NOT NULL) FROM job_groups"
            )
        ).one()
    lines = [f"unique jobs: {_sent['sends']} sends of {keys} keys -> {jobs} jobs"]
    n, total, ok, bad, settled, fired = groups
    lines.append(
        f"groups: {n} with {total or 0} children ({ok or 0} succeeded, {bad or 0} failed);"
        f" {settled} settled, {fired} fired their callbacks"
    )
    held = ", ".join(f"{key} {n} slots ({busy} held now)" for key, n, busy in slots) or "none used"
    lines.append(f"limits: concurrency {held}; rate buckets {', '.join(buckets) or 'none used'}")
    return lines
