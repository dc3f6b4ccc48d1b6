"""deploy/ and docker-compose.yml: valid for their tools, and kept to our rules (no Docker here)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess

import jsonschema
import pytest
import yaml

from jobcore.metrics import definitions, scheduling  # noqa: F401  (registers the metric families)
from shop.orders import metrics as order_metrics  # noqa: F401  (registers the order domain's)
from tests.support.metrics import promtool, promtool_check

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMPOSE = os.path.join(ROOT, "docker-compose.yml")
SCHEMA = os.path.join(
    ROOT, "tests", "data", "compose-spec.json"
)  # compose-spec/compose-spec, Apache-2.0
SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|KEY", re.IGNORECASE)
INTERPOLATED_SECRET = re.compile(r"^\$\{[A-Z_]+:\?[^}]*\}$")
URL_CREDENTIALS = re.compile(r"://[^/@\s]*:([^@\s]*)@")
SCRAPE_TIME_NAMES = {
    "shopjobs_queue_messages",
    "shopjobs_queue_oldest_message_age_seconds",
    "shopjobs_dead_letters_stored",
    "shopjobs_metrics_source_up",
    "shopjobs_price_feed_last_success_timestamp_seconds",
    "shopjobs_price_feed_last_poll_timestamp_seconds",
    "shopjobs_health_check_last_run_timestamp_seconds",
    "shopjobs_backup_last_verified_timestamp_seconds",
    "shopjobs_stranded",
}
DOMAIN_NAMES = {
    "shopjobs_price_feed_age_seconds",
    "shopjobs_price_feed_fetches_total",
    "shopjobs_health_up",
    "shopjobs_health_latency_seconds",
}


def _compose() -> dict:
    with open(COMPOSE) as fh:
        return yaml.safe_load(fh)


def _readme_services() -> set[str]:
    with open(os.path.join(ROOT, "README.md")) as fh:
        section = fh.read().split("## Metrics, logs, dashboard, compose", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z0-9-]+)` \|", section, re.MULTILINE))


def test_the_compose_file_follows_the_compose_specification():
    with open(SCHEMA) as fh:
        schema = json.load(fh)
    # the schema names draft 07 by an id jsonschema does not know: choose the validator outright
    validator = jsonschema.Draft7Validator(schema)
    validator.validate(_compose())
    # and the check has teeth: a misspelt key is an error
    broken = _compose()
    broken["services"]["workers"]["helthcheck"] = broken["services"]["workers"].pop("healthcheck")
    assert not validator.is_valid(broken)


def test_the_compose_file_has_no_obsolete_version_key_and_no_written_in_credentials():
    compose = _compose()
    assert "version" not in compose
    with open(COMPOSE) as fh:
        raw = fh.read()
    for password in URL_CREDENTIALS.findall(raw):
        assert INTERPOLATED_SECRET.match(password), password
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key) and not key.endswith(("_USER", "_URL")):
                assert INTERPOLATED_SECRET.match(str(value)), f"{name}.{key} must be ${{VAR:?...}}"


INTERPOLATION = re.compile(r"\$\{([A-Z_]+)(?::([?-])([^}]*))?\}")


def _interpolate(value: str, given: dict[str, str]) -> str:
    """Compose's ``${VAR:?msg}`` / ``${VAR:-default}`` with ``given`` as the shell's environment."""

    def one(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if name in given:
            return given[name]
        if kind == "?":
            raise KeyError(f"{name}: {rest}")
        return rest or ""

    return INTERPOLATION.sub(one, value)


def test_the_application_runs_in_production_mode_and_requires_every_secret():
    from jobcore.settings import _is_secret
    from shop.settings import Settings

    env = _compose()["services"]["workers"]["environment"]
    assert env["SHOPJOBS_ENV"] == "production"
    required = {
        m.group(1)
        for v in env.values()
        for m in INTERPOLATION.finditer(str(v))
        if m.group(2) == "?"
    }
    secret_fields = {
        "SHOPJOBS_" + f.name.upper() for f in dataclasses.fields(Settings) if _is_secret(f)
    }
    # every secret of the settings that has no safe default is required by the compose file
    for variable in secret_fields - {"SHOPJOBS_SMTP_PASSWORD"}:  # SMTP AUTH is optional
        assert variable in env and INTERPOLATED_SECRET.match(str(env[variable])), variable
    not_secrets = {"SMS_URL": "https://sms.example", "PRICE_FEED_SOURCES": "a=https://fx.example"}
    given = {name: not_secrets.get(name, f"Test-{name.lower()}-pw") for name in required}
    resolved = {k: _interpolate(str(v), given) for k, v in env.items()}
    Settings.from_env(resolved)  # production validation passes with every secret given
    for name in required:  # and a missing one stops `docker compose up` naming it
        with pytest.raises(KeyError, match=name):
            {
                k: _interpolate(str(v), {n: x for n, x in given.items() if n != name})
                for k, v in env.items()
            }


def test_every_service_has_a_healthcheck_or_runs_once_and_dependencies_wait_on_conditions():
    services = _compose()["services"]
    one_shot = {name for name, s in services.items() if s.get("restart") == "no"}
    assert one_shot == {"migrate"}
    for name, service in services.items():
        assert name in one_shot or "healthcheck" in service, f"{name} has no healthcheck"
        for dependency, spec in (service.get("depends_on") or {}).items():
            expected = (
                "service_completed_successfully" if dependency in one_shot else "service_healthy"
            )
            assert spec == {"condition": expected}, f"{name} -> {dependency}: {spec}"


def test_the_compose_stack_has_every_part_and_monitoring_under_a_profile():
    services = _compose()["services"]
    assert {
        "rabbitmq",
        "postgres",
        "migrate",
        "workers",
        "scheduler",
        "payments",
        "warehouse",
        "carrier",
        "prometheus",
        "grafana",
    } <= set(services)
    assert services["prometheus"]["profiles"] == services["grafana"]["profiles"] == ["monitoring"]
    assert services["rabbitmq-2"]["profiles"] == services["rabbitmq-3"]["profiles"] == ["cluster"]
    optional = ("prometheus", "grafana", "rabbitmq-2", "rabbitmq-3")
    assert all("profiles" not in s for n, s in services.items() if n not in optional)
    with open(os.path.join(ROOT, "deploy", "rabbitmq", "enabled_plugins")) as fh:
        plugins = fh.read()
    assert "rabbitmq_management" in plugins and "rabbitmq_prometheus" in plugins
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert os.path.exists(os.path.join(ROOT, source)), source


def test_the_readme_names_exactly_the_services_of_the_compose_file():
    assert _readme_services() == set(_compose()["services"])


def test_promtool_accepts_the_alert_rules_and_the_prometheus_config():
    rules = promtool_check("rules", os.path.join(ROOT, "deploy", "alerts.yml"))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = promtool_check("config", os.path.join(ROOT, "deploy", "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr


def _exported_names() -> set[str]:
    from prometheus_client import REGISTRY

    names = set(SCRAPE_TIME_NAMES | DOMAIN_NAMES)
    for family in REGISTRY.collect():
        suffixes = ("_bucket", "_count", "_sum") if family.type == "histogram" else ("", "_total")
        names |= {family.name + suffix for suffix in suffixes}
    return names


def test_the_dashboard_and_the_alerts_use_only_metrics_that_exist():
    with open(os.path.join(ROOT, "deploy", "grafana", "dashboards", "shopjobs.json")) as fh:
        dashboard = json.load(fh)
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    with open(os.path.join(ROOT, "deploy", "alerts.yml")) as fh:
        rules = yaml.safe_load(fh)
    expressions += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    used = {name for e in expressions for name in re.findall(r"\bshopjobs_[a-z_]+", e)}
    assert used and used <= _exported_names(), used - _exported_names()
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    assert {
        "ShopjobsJobFailureRateHigh",
        "ShopjobsDeadLettersGrowing",
        "ShopjobsQueueBacklogOld",
        "ShopjobsSchedulerWithoutLeader",
        "ShopjobsPriceFeedStale",
    } <= alerts


def test_every_alert_has_promtool_rule_tests_firing_and_not_firing_and_they_pass():
    with open(os.path.join(ROOT, "deploy", "alerts.yml")) as fh:
        alerts = {r["alert"] for g in yaml.safe_load(fh)["groups"] for r in g["rules"]}
    with open(os.path.join(ROOT, "deploy", "alerts.test.yml")) as fh:
        cases = [c for t in yaml.safe_load(fh)["tests"] for c in t["alert_rule_test"]]
    fires = {c["alertname"] for c in cases if c.get("exp_alerts")}
    quiet = {c["alertname"] for c in cases if not c.get("exp_alerts")}
    assert alerts - fires == set(), "alerts without a firing test"
    assert alerts - quiet == set(), "alerts without a not-firing test"
    done = subprocess.run(
        [promtool(), "test", "rules", os.path.join(ROOT, "deploy", "alerts.test.yml")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_runs_each_process_under_the_login_of_its_database_role():
    services = _compose()["services"]

    def user(service: str, variable: str = "SHOPJOBS_DATABASE_URL") -> str:
        return str(services[service]["environment"][variable]).split("://", 1)[1].split(":", 1)[0]

    # the migration owner migrates; workers, scheduler and console are the application role
    assert user("migrate") == "shopjobs_owner"
    for service in ("workers", "scheduler", "console"):
        assert user(service) == "shop_worker", service
    assert user("workers", "SHOPJOBS_BACKUP_DATABASE_URL") == "shop_backup"
    # and the postgres image's first start makes those logins members of 0013's group roles
    assert any(
        v.startswith("./deploy/postgres/init-roles.sh:/docker-entrypoint-initdb.d/")
        for v in services["postgres"]["volumes"]
    )
    with open(os.path.join(ROOT, "deploy", "postgres", "init-roles.sh")) as fh:
        script = fh.read()
    for line in (
        "CREATE ROLE shop_worker LOGIN PASSWORD :'app_pw' IN ROLE shopjobs_app;",
        "CREATE ROLE shop_backup LOGIN CREATEDB PASSWORD :'backup_pw' IN ROLE shopjobs_backup;",
        "CREATE ROLE shop_reports LOGIN PASSWORD :'readonly_pw' IN ROLE shopjobs_readonly;",
        'ALTER DATABASE :"db" OWNER TO shopjobs_owner;',
    ):
        assert line in script, line
    for variable in ("OWNER", "APP", "BACKUP", "READONLY"):
        value = services["postgres"]["environment"][f"SHOPJOBS_{variable}_DB_PASSWORD"]
        assert INTERPOLATED_SECRET.match(value), variable


def test_the_cluster_profile_joins_three_nodes_that_share_a_cookie_and_one_peer_list():
    services = _compose()["services"]
    nodes = [services[name] for name in ("rabbitmq", "rabbitmq-2", "rabbitmq-3")]
    assert [n["hostname"] for n in nodes] == ["rabbitmq", "rabbitmq-2", "rabbitmq-3"]
    cookies = {n["environment"]["RABBITMQ_ERLANG_COOKIE"] for n in nodes}
    assert len(cookies) == 1 and INTERPOLATED_SECRET.match(cookies.pop())
    with open(os.path.join(ROOT, "deploy", "rabbitmq", "rabbitmq.conf")) as fh:
        conf = fh.read()
    peers = re.findall(
        r"^cluster_formation\.classic_config\.nodes\.\d+ = (\S+)$", conf, re.MULTILINE
    )
    assert peers == [f"rabbit@{n['hostname']}" for n in nodes]
    for node in nodes:
        assert any(v.endswith(":/etc/rabbitmq/rabbitmq.conf:ro") for v in node["volumes"])
    # the application's queue type and node list come from the shell, checked by its settings
    from shop.settings import Settings

    env = services["workers"]["environment"]
    nodes_env = {
        "AMQP_MORE_NODES": ";amqp://shop:pw@rabbitmq-2:5672/%2F;amqp://shop:pw@rabbitmq-3:5672/%2F",
        "QUEUE_TYPE": "quorum",
        "RABBITMQ_PASSWORD": "pw",
    }
    settings = Settings.from_env(
        {
            "SHOPJOBS_AMQP_URL": _interpolate(env["SHOPJOBS_AMQP_URL"], nodes_env),
            "SHOPJOBS_QUEUE_TYPE": _interpolate(env["SHOPJOBS_QUEUE_TYPE"], nodes_env),
        }
    )
    assert settings.queue_type == "quorum" and len(settings.amqp_url.split(";")) == 3
