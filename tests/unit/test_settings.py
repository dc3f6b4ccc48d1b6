from __future__ import annotations

import pytest

from shop.settings import Settings, SettingsError, describe


def test_defaults_work_on_a_developer_machine():
    settings = Settings.from_env({})
    assert settings.amqp_url.startswith("amqp://guest:guest@127.0.0.1:5672")
    assert "127.0.0.1:5432" in settings.database_url
    assert settings.metrics_bind == "127.0.0.1"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SHOPJOBS_AMQP_URL", "http://nope"),
        ("SHOPJOBS_DATABASE_URL", "mysql://x/y"),
        ("SHOPJOBS_METRICS_PORT", "abc"),
        ("SHOPJOBS_METRICS_PORT", "70000"),
        ("SHOPJOBS_METRICS_BIND", "localhost:1"),
        ("SHOPJOBS_LOG_FORMAT", "xml"),
        ("SHOPJOBS_SMTP_STARTTLS", "maybe"),
        ("SHOPJOBS_TIMEZONE", "Mars/Olympus"),
    ],
)
def test_a_bad_value_fails_at_start_naming_the_variable(variable, value):
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({variable: value})


def test_a_bad_password_is_not_echoed_back():
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"SHOPJOBS_SMTP_PASSWORD": "", "SHOPJOBS_SMTP_PORT": "x"})
    assert "SHOPJOBS_SMTP_PORT" in str(info.value)


def test_backoff_bounds_must_be_ordered():
    with pytest.raises(SettingsError, match="MIN_BACKOFF_MS"):
        Settings.from_env({"SHOPJOBS_MIN_BACKOFF_MS": "5000", "SHOPJOBS_MAX_BACKOFF_MS": "1000"})


def test_heartbeat_is_added_to_the_amqp_url_unless_given():
    assert "heartbeat=30" in Settings.from_env({}).amqp_url_with_heartbeat
    given = Settings.from_env({"SHOPJOBS_AMQP_URL": "amqp://u:p@h:5672/v?heartbeat=5"})
    assert given.amqp_url_with_heartbeat.count("heartbeat=") == 1


def test_every_setting_is_documented():
    rows = describe()
    assert all(name.startswith("SHOPJOBS_") and doc for name, _, doc in rows)
