"""A producer exports its publish-failure series from the start, at 0 (not only after a failure)."""

from __future__ import annotations

from dramatiq.brokers.stub import StubBroker
from prometheus_client import REGISTRY

from jobcore.metrics.publishing import PublishMetrics


class _Broker(PublishMetrics, StubBroker):
    pass


def test_declaring_a_queue_exports_its_publish_failures_at_zero():
    name = "unit_publish_series"
    assert REGISTRY.get_sample_value("shopjobs_publish_failures_total", {"queue": name}) is None
    broker = _Broker()
    broker.declare_queue(name)
    assert REGISTRY.get_sample_value("shopjobs_publish_failures_total", {"queue": name}) == 0.0
    assert (
        REGISTRY.get_sample_value("shopjobs_publish_failures_total", {"queue": name + ".DQ"})
        is None
    )
