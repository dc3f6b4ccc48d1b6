"""A pytest plugin for the test command: a test that skips fails the run.

``scripts/test.sh`` installs and starts everything the tests need (the venv's packages,
PostgreSQL, RabbitMQ, promtool) and loads this plugin (``-p tests.support.every_test_runs``), so
a skip there means that set-up failed, and "passed, 3 skipped" must not read as green. A plain
``pytest`` run keeps its skips (a developer without RabbitMQ can still run the unit tests).
"""

from __future__ import annotations

import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    report: pytest.TestReport = yield
    if report.skipped and not hasattr(report, "wasxfail"):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        report.outcome = "failed"
        report.longrepr = (
            f"{reason}\n(skipped, but the test command runs every test: "
            "install or start what it needs, see scripts/test.sh)"
        )
    return report
