"""Assertions shared by the chaos tests."""

from __future__ import annotations

from devtools.chaos.harness import Outcome


def problems_but_metrics(outcome: Outcome) -> list[str]:
    """The audit's findings other than the metrics-versus-ledger comparison."""
    return [p for p in outcome.problems() if not p.startswith("metrics differ")]


def assert_metrics_within(outcome: Outcome, slack: int) -> None:
    """Metrics count runs, the ledger counts messages: a job re-run because its first run's end
    was lost (a kill -9, a database outage between the job and its ledger commit) counts twice
    in the metrics, a kill between the ledger commit and the metric once less. They may differ
    by at most ``slack`` (the runs the faults could cut), and must agree exactly without faults.
    """
    for metric, ledger in outcome.audit.metrics.values():
        assert abs(metric - ledger) <= slack, outcome.audit.metrics
