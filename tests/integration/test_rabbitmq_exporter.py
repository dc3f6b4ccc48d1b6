"""RabbitMQ's own exporter (``rabbitmq_prometheus``, enabled by ``scripts/bootstrap.sh``) serves
the queue series the broker-side alerts read, with no worker running, and those alerts fire on
what it actually serves: the series scraped here are fed to promtool with deploy/alerts.yml.
The dead-letter depth alert stays quiet on the same input (no .XQ holds anything).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pika
import yaml
from prometheus_client.parser import text_string_to_metric_families

from devtools import devservices
from tests.support.metrics import promtool
from tests.support.waiting import wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# the machine's node, whose exporter bootstrap enabled (a run on private services, the chaos
# suite's, still has it): an exclusive queue in its default vhost, gone with the connection
VHOST = "/"
QUEUE = f"shopjobs_exporter_probe_{os.getpid()}"
DETAILED = "http://{}:{}/metrics/detailed?family=queue_coarse_metrics&family=queue_consumer_count"


def _vhost() -> str:
    return VHOST


@contextmanager
def _unconsumed_queue(messages: int) -> Iterator[None]:
    host, port = devservices.PORTS["rabbitmq"]
    conn = pika.BlockingConnection(pika.URLParameters(f"amqp://guest:guest@{host}:{port}/%2F"))
    try:
        channel = conn.channel()
        channel.confirm_delivery()
        channel.queue_declare(QUEUE, exclusive=True)
        for n in range(messages):
            channel.basic_publish("", QUEUE, b'{"n": %d}' % n)
        yield
    finally:
        conn.close()


def _queue_samples() -> dict[tuple[str, str], float]:
    """(metric, queue) -> value in the probe's vhost, as Prometheus scrapes them."""
    text = httpx.get(DETAILED.format(*devservices.PROMETHEUS_PORT), timeout=10).text
    return {
        (sample.name, sample.labels["queue"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.labels.get("vhost") == _vhost() and "queue" in sample.labels
    }


def _alerts_on(samples: dict[tuple[str, str], float], tmp_path) -> dict:
    """What deploy/alerts.yml makes of ``samples`` held for 20 minutes (promtool)."""
    series = [
        {"series": f'{name}{{vhost="{_vhost()}",queue="{queue}"}}', "values": f"{value:g}x20"}
        for (name, queue), value in samples.items()
    ]
    series.append({"series": 'up{job="shopjobs-workers",instance="w:9191"}', "values": "0x20"})
    return {
        "rule_files": [os.path.join(ROOT, "deploy", "alerts.yml")],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series}],
    }


def test_the_exporter_serves_depth_and_consumers_while_no_worker_runs_and_the_alert_fires(
    tmp_path,
):
    # Given the exporter enabled on the local node (bootstrap does it; it restarts nothing)
    assert devservices.enable_rabbitmq_exporter(), "rabbitmq_prometheus could not be enabled"
    # And 25 messages in a queue that no worker consumes
    with _unconsumed_queue(25):
        # When Prometheus would scrape RabbitMQ's exporter (statistics refresh every few seconds)
        wait_until(
            lambda: _queue_samples().get(("rabbitmq_detailed_queue_messages_ready", QUEUE)) == 25,
            timeout=60,
        )
        samples = _queue_samples()

    # Then it serves the queue's depth and its (zero) consumers
    assert samples[("rabbitmq_detailed_queue_consumers", QUEUE)] == 0
    samples = {k: v for k, v in samples.items() if k[1] == QUEUE}  # this test's queue only
    # And the alert rules fire on these series: messages waiting, nobody consuming
    spec = _alerts_on(samples, tmp_path)
    spec["tests"][0]["alert_rule_test"] = [
        {
            "eval_time": "10m",
            "alertname": "ShopjobsQueueNotConsumed",
            "exp_alerts": [
                {
                    "exp_labels": {"vhost": _vhost(), "queue": QUEUE, "severity": "critical"},
                    "exp_annotations": {
                        "summary": f"25 messages wait in {QUEUE} and no worker consumes it",
                        "description": "Workers for this queue are down or not started; "
                        "see `shopjobs workers --all`.",
                    },
                }
            ],
        },
        {"eval_time": "10m", "alertname": "ShopjobsDeadLetterQueueDeep", "exp_alerts": []},
    ]
    path = tmp_path / "exporter.test.yml"
    path.write_text(yaml.safe_dump(spec))
    done = subprocess.run(
        [promtool(), "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
