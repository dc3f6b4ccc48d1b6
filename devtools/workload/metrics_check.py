"""The main job's look at its workers' /metrics: jobs by outcome, checked against the ledger."""

from __future__ import annotations

import time
from collections import Counter

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from jobcore.db import session_scope
from jobcore.metrics.batched import FLUSH_INTERVAL_S
from jobcore.models import LedgerEntry


def scrape(port: int, settle_s: float = 3 * FLUSH_INTERVAL_S) -> str | None:
    """The workers' exposition text, or None (reported, not fatal) when the endpoint is down.

    Workers write their metrics in batches (once a second), so a scrape right after the last
    job lags by up to a batch: scrape again until the finished jobs match the ledger's, for at
    most ``settle_s``; a real mismatch still shows in ``report``.
    """
    deadline = time.monotonic() + settle_s
    while True:
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            print(f"metrics: scrape of 127.0.0.1:{port} failed: {exc}", flush=True)
            return None
        if _matches_ledger(response.text) or time.monotonic() > deadline:
            return response.text
        time.sleep(0.2)


def _ledger_states() -> Counter[str]:
    with session_scope() as s:
        rows = s.execute(select(LedgerEntry.state, func.count()).group_by(LedgerEntry.state)).all()
    return Counter(dict(rows))


def _matches_ledger(text: str) -> bool:
    outcomes, ledger = _sums(text, "shopjobs_jobs_total", "outcome"), _ledger_states()
    return all(outcomes[o] == ledger[o] for o in ("succeeded", "failed"))


def _sums(text: str, name: str, label: str) -> Counter[str]:
    out: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                out[sample.labels.get(label, "")] += int(sample.value)
    return out


def report(text: str | None) -> list[str]:
    """A few figures from /metrics, and whether the finished jobs match the ledger's."""
    if text is None:
        return ["  (no metrics: the endpoint did not answer)"]
    outcomes = _sums(text, "shopjobs_jobs_total", "outcome")
    dead = _sums(text, "shopjobs_dead_letters_total", "reason")
    retries = sum(_sums(text, "shopjobs_job_retries_total", "actor").values())
    ledger = _ledger_states()
    lines = [
        "  jobs by outcome: " + ", ".join(f"{o} {n}" for o, n in sorted(outcomes.items())),
        f"  retries {retries}; dead letters by reason: "
        + (", ".join(f"{r} {n}" for r, n in sorted(dead.items())) or "none"),
    ]
    for outcome in ("succeeded", "failed"):
        verdict = "matches" if outcomes[outcome] == ledger[outcome] else "DIFFERS from"
        lines.append(
            f"  {outcome}: metrics {outcomes[outcome]} {verdict} the ledger's {ledger[outcome]}"
        )
    return lines
