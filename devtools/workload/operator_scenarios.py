"""What operators do while the shop runs: cancel delayed jobs before they fall due."""

from __future__ import annotations

import getpass
import random

from devtools.workload.seed import Seeded
from devtools.workload.sent import Sent
from jobcore.db import session_scope

DELAYED, CANCELLED, DELAY_MS = 20, 10, 3000


def cancel_delayed_jobs(rng: random.Random, seeded: Seeded) -> Sent:
    """20 availability refreshes scheduled 3 s out; an operator cancels 10 of them at once.
    The cancelled ones are skipped when they fall due and end as ``cancelled`` in the ledger."""
    import broker
    from actors.inventory import update_product_availability
    from jobcore.cancellations import cancel

    sent = Sent("operator: cancel delayed jobs")
    for _ in range(DELAYED):
        message = update_product_availability.send_with_options(
            args=(rng.choice(seeded.product_ids),), delay=DELAY_MS
        )
        sent.message_ids.append(message.message_id)
    broker.flush_ledger()
    with session_scope() as s:
        outcomes = cancel(
            s,
            message_ids=sent.message_ids[:CANCELLED],
            reason="main job: stock recount pending",
            operator=getpass.getuser(),
        )
    assert sum(o.cancelled for o in outcomes) == CANCELLED, [o.note for o in outcomes]
    return sent
