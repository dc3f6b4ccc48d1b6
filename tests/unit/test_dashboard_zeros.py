"""The dashboard's retry, failure-ratio, dead-letter and publish-failure panels show 0, not
"No data", when nothing failed: their counters (or the failure outcome) have no series until a
first failure, and a ratio over an absent numerator is absent too. Evaluated by promtool itself.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml

from tests.support.metrics import promtool

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ZERO_PANELS = {
    "Failure ratio by actor": ["A"],
    "Retries and dead letters": ["A", "B"],
    "Publish confirm latency p99 and failures": ["B"],
}
HEALTHY = [  # jobs ran, none failed, none retried: the failure series were never created
    {
        "series": 'shopjobs_jobs_total{actor="orders.pay",queue="orders",outcome="succeeded"}',
        "values": "0+60x20",
    },
]


def _panel_exprs() -> dict[str, str]:
    with open(os.path.join(ROOT, "deploy", "grafana", "dashboards", "shopjobs.json")) as fh:
        panels = {p["title"]: p for p in json.load(fh)["panels"]}
    found = {}
    for title, refs in ZERO_PANELS.items():
        assert panels[title]["fieldConfig"]["defaults"].get("noValue") == "0", title
        for target in panels[title]["targets"]:
            if target["refId"] in refs:
                found[f"{title}/{target['refId']}"] = target["expr"].replace(
                    "$__rate_interval", "5m"
                )
    assert len(found) == sum(len(r) for r in ZERO_PANELS.values())
    return found


@pytest.mark.parametrize("inputs", [HEALTHY, []], ids=["jobs-without-failures", "no-series-at-all"])
def test_the_failure_panels_read_zero_when_nothing_failed(tmp_path, inputs):
    exprs = _panel_exprs()
    # Given per actor zero where the actor ran jobs, one unlabelled zero when nothing ran at all
    by_actor = [{"labels": '{actor="orders.pay"}', "value": 0}]
    unlabelled = [{"labels": "{}", "value": 0}]
    cases = []
    for expr in exprs.values():
        per_actor = inputs and "by (actor)" in expr
        cases.append(
            {"expr": expr, "eval_time": "15m", "exp_samples": by_actor if per_actor else unlabelled}
        )
    spec = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": inputs, "promql_expr_test": cases}],
    }
    path = tmp_path / "zeros.test.yml"
    path.write_text(yaml.safe_dump(spec))
    # When promtool evaluates the panels' expressions, Then each gives 0 (not an empty result)
    done = subprocess.run(
        [promtool(), "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_without_the_fallbacks_the_same_check_fails_as_no_data(tmp_path):
    # the check above is able to fail: the failure-ratio expression as it was returns nothing
    old = (
        'sum by (actor) (rate(shopjobs_jobs_total{outcome=~"failed|dead"}[5m])) '
        "/ sum by (actor) (rate(shopjobs_jobs_total[5m]))"
    )
    spec = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": HEALTHY,
                "promql_expr_test": [
                    {
                        "expr": old,
                        "eval_time": "15m",
                        "exp_samples": [{"labels": '{actor="orders.pay"}', "value": 0}],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "old.test.yml"
    path.write_text(yaml.safe_dump(spec))
    done = subprocess.run(
        [promtool(), "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0 and "got:" in (done.stdout + done.stderr), done.stdout
