"""Job events applied in aggregate give the same series as one update per event."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram

from jobcore.metrics.definitions import DURATION_BUCKETS
from jobcore.metrics.job_events import _observe_all


def _samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    return {
        (s.name, s.labels.get("le", "")): s.value
        for metric in registry.collect()
        for s in metric.samples
        if not s.name.endswith("_created")
    }


def test_a_histogram_filled_per_bucket_equals_one_observe_per_amount():
    # amounts on bounds, between them, past the last one, zero and negative
    amounts = [0.005, 0.0051, 0.0, -1.0, 0.3, 600, 601, 1e9, 2.5, 2.5000001, 0.01] * 3
    one_by_one, aggregated = CollectorRegistry(), CollectorRegistry()
    a = Histogram("h", "h", ["actor"], buckets=DURATION_BUCKETS, registry=one_by_one)
    b = Histogram("h", "h", ["actor"], buckets=DURATION_BUCKETS, registry=aggregated)
    for amount in amounts:
        a.labels("x").observe(amount)
    _observe_all(b.labels("x"), amounts)
    expected = _samples(one_by_one)
    assert expected[("h_count", "")] == len(amounts)
    assert _samples(aggregated) == expected
