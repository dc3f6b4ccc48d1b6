"""A pytest plugin: a run that includes the chaos suite runs on private RabbitMQ and PostgreSQL.

The chaos tests stop, crash and alarm their services; on the machine's own (5672, 5432) that
broke every other test run sharing them. Loaded with ``-p`` (pyproject's ``addopts``), this
decides before any conftest is imported (the chaos conftest imports ``broker``, which reads
the URLs once): when the run may select a chaos test (its ``-m`` expression and paths), it
starts a private node and instance (``devtools.private``) and puts them in the environment;
``tests/conftest.py`` then builds this run's URLs on them, and every worker, fault and CLI call
follows. ``SHOPJOBS_TEST_SERVICES=private|machine`` decides it for any run.
"""

from __future__ import annotations

import os
import pathlib
import sys
from typing import Any

import pytest
from _pytest.mark.expression import Expression

FAULT_MARKERS = ({"chaos", "integration"}, {"chaos", "chaos_ci", "integration"})
CHAOS_DIR = pathlib.Path(__file__).resolve().parents[1] / "chaos"
_SERVICES: list[Any] = []


def selects_fault_tests(markexpr: str, args: list[str], rootpath: pathlib.Path) -> bool:
    """Whether a run with this ``-m`` expression and these paths may run a chaos test."""
    chosen = os.environ.get("SHOPJOBS_TEST_SERVICES", "")
    if chosen in ("private", "machine"):
        return chosen == "private"
    if markexpr:
        compiled = Expression.compile(markexpr)
        if not any(compiled.evaluate(markers.__contains__) for markers in FAULT_MARKERS):
            return False
    paths = [
        pathlib.Path(rootpath, arg.split("::")[0]).resolve()
        for arg in args
        if not arg.startswith("-")
    ] or [rootpath / "tests"]
    return any(
        path == CHAOS_DIR or CHAOS_DIR in path.parents or path in CHAOS_DIR.parents
        for path in paths
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, args: list[str]) -> None:
    known = early_config.known_args_namespace
    files = [str(f) for f in getattr(known, "file_or_dir", None) or []]
    if not selects_fault_tests(getattr(known, "markexpr", "") or "", files, pathlib.Path.cwd()):
        return
    from devtools import private

    reason = private.available()
    if reason:
        raise pytest.UsageError(f"the chaos suite needs private services: {reason}")
    services = private.PrivateServices(name=f"shopjobs-test-{os.getpid()}").start()
    _SERVICES.append(services)
    os.environ.update(services.env())
    os.environ["SHOPJOBS_TEST_AMQP_ADDRESS"] = f"127.0.0.1:{services.rabbit.port}"
    os.environ["SHOPJOBS_TEST_DATABASE_ADDRESS"] = f"127.0.0.1:{services.postgres.port}"
    print(
        f"private services for this run: RabbitMQ {services.rabbit.node} on "
        f"{services.rabbit.port}, PostgreSQL on {services.postgres.port} "
        f"(booted in {services.boot_s:.1f}s)",
        file=sys.stderr,
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    while _SERVICES:
        _SERVICES.pop().stop()
