"""Change.absorb folds two changes of one message as the ledger's upsert merges two rows."""

from __future__ import annotations

import dataclasses
import random

from jobcore.ledger import precedence
from jobcore.ledger.states import State
from jobcore.ledger.writer import Change

KEPT_FIRST = ("args", "order_id", "user_id", "job_id", "group_id")  # COALESCE(j.x, EXCLUDED.x)
LATEST = ("eta", "error", "traceback", "worker", "result")  # COALESCE(EXCLUDED.x, j.x)


def _upsert_rules(old: Change, new: Change) -> dict[str, object]:
    """The merged row by the upsert's column rules (jobcore.ledger.writer._UPSERT)."""
    merged = dataclasses.asdict(old)
    if precedence.takes(old.state, old.state_ts, new.state, new.state_ts):
        merged["state"], merged["state_ts"] = new.state, new.state_ts
    merged["attempts"] = old.attempts + new.attempts
    merged["duplicates"] = old.duplicates + new.duplicates
    for name in KEPT_FIRST:
        merged[name] = getattr(old, name) if getattr(old, name) is not None else getattr(new, name)
    for name in LATEST:
        merged[name] = getattr(new, name) if getattr(new, name) is not None else getattr(old, name)
    stamps = [v for v in (old.enqueued_at, new.enqueued_at) if v is not None]
    merged["enqueued_at"] = min(stamps) if stamps else None  # LEAST ignores NULL
    for name in ("started_at", "finished_at"):  # GREATEST ignores NULL
        values = [v for v in (getattr(old, name), getattr(new, name)) if v is not None]
        merged[name] = max(values) if values else None
    return merged


def _random_change(rng: random.Random) -> Change:
    def maybe(value: object) -> object:
        return value if rng.random() < 0.5 else None

    return Change(
        "m",
        "a",
        "q",
        rng.choice(list(State)),
        rng.uniform(0, 100),
        args=maybe(f'["{rng.random()}"]'),
        attempts=rng.randint(0, 2),
        enqueued_at=maybe(rng.uniform(1, 100)),
        eta=maybe(rng.uniform(1, 100)),
        started_at=maybe(rng.uniform(1, 100)),
        finished_at=maybe(rng.uniform(1, 100)),
        error=maybe(f"E{rng.random()}"),
        traceback=maybe("tb"),
        order_id=maybe(rng.randint(1, 9)),
        user_id=maybe(rng.randint(1, 9)),
        job_id=maybe("j"),
        worker=maybe(f"w{rng.randint(1, 3)}"),
        duplicates=rng.randint(0, 1),
        result=maybe("{}"),
        group_id=maybe("g"),
    )


def test_absorb_merges_every_column_as_the_upsert_does():
    rng = random.Random(12)
    for _ in range(2000):
        old, new = _random_change(rng), _random_change(rng)
        expected = _upsert_rules(old, new)
        old.absorb(new)
        assert dataclasses.asdict(old) == expected
