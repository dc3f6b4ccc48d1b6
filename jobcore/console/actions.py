"""What an operator does from the console: the CLI's own functions, which write the audit row
(who: ``console:<user>``) as they do for the CLI.

Bulk actions take ids, never a filter: the ids the operator saw in the preview are the only
rows touched (a dead letter that arrived after the preview is not among them), at most the
cap, each in its own transaction so one bad row does not undo the others.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from jobcore import cancellations, dead_letters
from jobcore.console.auth import Principal
from jobcore.console.extensions import Extensions
from jobcore.db import session_scope
from jobcore.errors import InvalidInput, NotFound

logger = logging.getLogger("shopjobs.console")


@dataclasses.dataclass
class Result:
    """One row's outcome, as the result page lists it."""

    subject: str
    done: bool
    note: str
    link: str | None = None


def cancel(who: Principal, message_ids: Sequence[str], reason: str, cap: int) -> list[Result]:
    """``shopjobs jobs cancel``: pending or delayed jobs only; one audit row (written by it)."""
    ids = _capped(list(dict.fromkeys(message_ids)), cap)
    with session_scope() as s:
        outcomes = cancellations.cancel(
            s, message_ids=ids, reason=reason, operator=who.operator_name
        )
    return [Result(o.message_id, o.cancelled, o.note, f"/jobs/{o.message_id}") for o in outcomes]


def replay(who: Principal, ext: Extensions, letter_ids: Sequence[int], cap: int) -> list[Result]:
    """``shopjobs dlq replay``: publish each again under a new id, linked in the ledger."""
    ids = _capped(list(dict.fromkeys(letter_ids)), cap)
    ext.load_actors()
    results = []
    for letter_id in ids:
        try:
            with session_scope() as s:
                row = dead_letters.get(s, letter_id)
                new = dead_letters.replay(s, row, operator=who.operator_name)
            results.append(
                Result(f"dead letter {letter_id}", True, f"replayed as {new}", f"/jobs/{new}")
            )
        except (InvalidInput, NotFound) as exc:
            results.append(
                Result(f"dead letter {letter_id}", False, str(exc), f"/dead-letters/{letter_id}")
            )
    ext.flush()
    logger.info(
        "console: %s replayed %d of %d dead letters",
        who.name,
        sum(r.done for r in results),
        len(ids),
    )
    return results


def purge(who: Principal, letter_ids: Sequence[int], cap: int) -> list[Result]:
    """``shopjobs dlq purge``: delete for good; the audit row is written by it."""
    ids = _capped(list(dict.fromkeys(letter_ids)), cap)
    with session_scope() as s:
        count = dead_letters.purge(s, ids, operator=who.operator_name)
    return [Result(f"{count} of {len(ids)} dead letters", count > 0, "purged (audit log written)")]


def schedule(who: Principal, ext: Extensions, name: str, action: str) -> Result:
    """``shopjobs schedules pause|resume|trigger NAME``."""
    if ext.schedules is None:
        raise NotFound("this application has no schedules")
    if action == "pause":
        changed = ext.schedules.pause(name, who.operator_name)
        note = "paused" if changed else "already paused"
    elif action == "resume":
        changed = ext.schedules.resume(name, who.operator_name)
        note = "resumed" if changed else "not paused"
    elif action == "trigger":
        ext.load_actors()
        fire_time, message_id = ext.schedules.trigger(name, who.operator_name)
        ext.flush()
        changed = message_id is not None
        note = (
            f"fired at {fire_time:%H:%M:%S} as {message_id}"
            if changed
            else f"a fire at {fire_time:%H:%M:%S} was already sent; nothing sent"
        )
    else:
        raise NotFound(f"no schedule action {action!r}")
    return Result(name, changed, note, "/schedules")


def _capped(ids: list[Any], cap: int) -> list[Any]:
    if not ids:
        raise InvalidInput("nothing selected")
    if len(ids) > cap:
        raise InvalidInput(f"{len(ids)} rows selected; one action touches at most {cap}")
    return ids
