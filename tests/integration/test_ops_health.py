"""The health check against real components: stopped ones reported down with the reason,
results stored and exported as metrics, one admin alert per incident, the CLI's exit code."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

from prometheus_client import REGISTRY
from sqlalchemy import select

from actors import health as health_actors
from devtools.ports import free_port
from devtools.processes import ROOT
from devtools.stand_ins.process import start_stand_in
from jobcore.db import session_scope
from shop.models import HealthCheck, Notification
from shop.notifications.contexts import health as health_context
from shop.ops import health
from shop.scheduling.process import start_scheduler
from shop.settings import Settings
from tests.support import scheduled_actors
from tests.support.smtp_listener import SmtpListener
from tests.support.waiting import wait_until


def _latest() -> dict[str, HealthCheck]:
    with session_scope() as s:
        return {c.component: c for c in health.latest(s)}


def _checks() -> int:
    with session_scope() as s:
        return len(s.scalars(select(HealthCheck.id)).all())


def test_stopped_components_are_reported_down_with_the_reason_and_alert_once(
    stand_ins, start_worker, tmp_path
):
    # Given every component up: our own warehouse stand-in, an SMTP listener, a scheduler
    warehouse = start_stand_in("warehouse")
    smtp = SmtpListener()
    env = {
        "SHOPJOBS_WAREHOUSE_URL": warehouse.url,
        "SHOPJOBS_SMTP_HOST": "127.0.0.1",
        "SHOPJOBS_SMTP_PORT": str(smtp.port),
        "SHOPJOBS_STORAGE_URL": (tmp_path / "store").as_uri(),
        "SHOPJOBS_HEALTH_ALERT_AFTER_S": "0",
    }
    scheduler = start_scheduler({"SHOPJOBS_SCHEDULE_MODULE": scheduled_actors.MODULE})
    try:
        start_worker("actors", processes=1, threads=2, env=env)
        wait_until(lambda: _probe_up(env, "scheduler"), 30, what="the scheduler recorded as leader")

        health_actors.health_check.send()
        wait_until(lambda: _checks() == 8, 60, what="eight components checked")
        first = _latest()
        assert {c: r.up for c, r in first.items()} == dict.fromkeys(
            [
                "broker",
                "carrier",
                "database",
                "payment",
                "scheduler",
                "smtp",
                "storage",
                "warehouse",
            ],
            True,
        ), {c: r.detail for c, r in first.items()}
        assert all(r.latency_ms >= 0 for r in first.values())

        # When the warehouse, the SMTP server and the scheduler stop
        warehouse.stop()
        smtp.stop()
        scheduler.stop()
        health_actors.health_check.send()
        wait_until(lambda: _checks() == 16, 60, what="the second check stored")

        # Then each is reported down with why; the others stay up
        second = _latest()
        down = {c: r.detail for c, r in second.items() if not r.up}
        assert set(down) == {"warehouse", "smtp", "scheduler"}
        assert "ConnectError" in down["warehouse"]
        assert "ConnectionRefusedError" in down["smtp"]
        assert down["scheduler"] == "Down: no scheduler leader recorded"

        # And a third check in the same outage does not alert again
        health_actors.health_check.send()
        wait_until(lambda: _checks() == 24, 60, what="the third check stored")
        with session_scope() as s:
            alerts = sorted(
                (n.entity_key.split("#")[0], n.user_id)
                for n in s.scalars(
                    select(Notification).where(Notification.template == "health_component_down")
                )
            )
        assert alerts == [
            ("health:scheduler", None),
            ("health:smtp", None),
            ("health:warehouse", None),
        ]
        # the alert's context (loaded at delivery) names the reason
        with session_scope() as s:
            context = health_context.load(s, "warehouse")
        assert context["up_now"] is False and "ConnectError" in context["detail"]
    finally:
        scheduler.stop()
        smtp.stop()
        warehouse.stop()


def _probe_up(env: dict[str, str], component: str) -> bool:
    settings = Settings.from_env({**os.environ, **env})
    return health.probe_all(settings, [component])[0]["up"]


def test_health_metrics_and_the_cli_say_what_is_down(stand_ins, clean):
    # Given SMTP pointing at a port where nothing listens
    env = {"SHOPJOBS_SMTP_HOST": "127.0.0.1", "SHOPJOBS_SMTP_PORT": str(free_port())}
    settings = dataclasses.replace(Settings.from_env(), smtp_port=int(env["SHOPJOBS_SMTP_PORT"]))

    # When the check runs in this process
    summary = health.health_check(settings)

    # Then the metrics say SMTP is down and the database is up, each with a latency
    assert "smtp" in summary["down"]
    assert REGISTRY.get_sample_value("shopjobs_health_up", {"component": "smtp"}) == 0
    assert REGISTRY.get_sample_value("shopjobs_health_up", {"component": "database"}) == 1
    assert (
        REGISTRY.get_sample_value("shopjobs_health_latency_seconds", {"component": "database"}) > 0
    )

    # And `shopjobs health --json` exits 3 naming SMTP as down
    done = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "shopjobs"), "health", "--json"],
        check=False,
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3, done.stderr
    rows = {r["component"]: r for r in json.loads(done.stdout)}
    assert rows["smtp"]["status"] == "DOWN" and "ConnectionRefusedError" in rows["smtp"]["detail"]
    assert rows["database"]["status"] == "up"
