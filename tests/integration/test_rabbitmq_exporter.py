"""RabbitMQ's own exporter (``rabbitmq_prometheus``, enabled by ``scripts/bootstrap.sh``) serves
the queue series the broker-side alerts read, with no worker running, and those alerts fire on
what it actually serves: the series scraped here are fed to promtool with deploy/alerts.yml.
"""

from __future__ import annotations

import os
import subprocess
from urllib.parse import unquote, urlparse

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from devtools import devservices
from tests.support import amqp
from tests.support.metrics import promtool
from tests.support.waiting import wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUEUE = "exporter_probe"
DETAILED = "http://{}:{}/metrics/detailed?family=queue_coarse_metrics&family=queue_consumer_count"


def _vhost() -> str:
    return unquote(urlparse(os.environ["SHOPJOBS_AMQP_URL"]).path.lstrip("/"))


def _queue_samples() -> dict[tuple[str, str], float]:
    """(metric, queue) -> value for this run's vhost, as Prometheus scrapes them."""
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
    clean, tmp_path
):
    # Given the exporter enabled on the local node (bootstrap does it; it restarts nothing)
    assert devservices.enable_rabbitmq_exporter(), "rabbitmq_prometheus could not be enabled"
    # And 25 messages in a queue of this run's vhost that no worker consumes
    amqp.declare(QUEUE)
    for n in range(25):
        amqp.publish_raw(QUEUE, b'{"n": %d}' % n)

    # When Prometheus would scrape RabbitMQ's exporter (its statistics refresh every few seconds)
    wait_until(
        lambda: _queue_samples().get(("rabbitmq_detailed_queue_messages_ready", QUEUE)) == 25,
        timeout=60,
    )
    samples = _queue_samples()

    # Then it serves the queue's depth and its (zero) consumers, and its dead-letter queue
    assert samples[("rabbitmq_detailed_queue_consumers", QUEUE)] == 0
    assert ("rabbitmq_detailed_queue_messages", f"{QUEUE}.XQ") in samples
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
