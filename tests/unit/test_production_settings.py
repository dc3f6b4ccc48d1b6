"""Production mode: a start with any default credential or open door fails, naming the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from jobcore.redaction import register_secrets, scrub_text, secrets_of
from shop.settings import Settings, SettingsError

GOOD = {
    "SHOPJOBS_ENV": "production",
    "SHOPJOBS_AMQP_URL": "amqp://shop:R4bbit-pw@rabbitmq:5672/%2F",
    "SHOPJOBS_DATABASE_URL": "postgresql+psycopg2://shop_app:Pg-pw-1@postgres:5432/shopjobs",
    "SHOPJOBS_PAYMENT_WEBHOOK_SECRET": "whsec_live_A1b2C3d4,whsec_live_old_E5f6",
    "SHOPJOBS_SMS_API_SECRET": "sms-live-secret",
    "SHOPJOBS_VERIFICATION_SECRET": "verify-live-secret",
    "SHOPJOBS_PAYMENT_URL": "https://api.payments.example",
    "SHOPJOBS_WAREHOUSE_URL": "https://wms.example",
    "SHOPJOBS_CARRIER_URL": "https://tracking.carrier.example",
    "SHOPJOBS_SMS_URL": "https://sms.example",
    "SHOPJOBS_PRICE_FEED_SOURCES": "primary=https://rates.example,backup=https://fx.example",
}


def test_a_production_start_with_real_credentials_is_accepted():
    settings = Settings.from_env(GOOD)
    assert settings.production
    assert settings.payment_webhook_secrets == ("whsec_live_A1b2C3d4", "whsec_live_old_E5f6")


def test_development_accepts_the_defaults_production_refuses():
    assert not Settings.from_env({}).production


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"SHOPJOBS_AMQP_URL": "amqp://guest:guest@rabbitmq:5672/%2F"}, "SHOPJOBS_AMQP_URL"),
        ({"SHOPJOBS_AMQP_URL": "amqp://shop@rabbitmq:5672/%2F"}, "SHOPJOBS_AMQP_URL"),
        (
            {"SHOPJOBS_DATABASE_URL": "postgresql+psycopg2://postgres:x1@pg/shopjobs"},
            "SHOPJOBS_DATABASE_URL",
        ),
        (
            {"SHOPJOBS_DATABASE_URL": "postgresql+psycopg2://shop@pg/shopjobs"},
            "SHOPJOBS_DATABASE_URL",
        ),
        (
            {"SHOPJOBS_DATABASE_URL": "postgresql+psycopg2://shop:@pg/shopjobs"},
            "SHOPJOBS_DATABASE_URL",
        ),
        ({"SHOPJOBS_PAYMENT_WEBHOOK_SECRET": "whsec_dev_only"}, "SHOPJOBS_PAYMENT_WEBHOOK_SECRET"),
        ({"SHOPJOBS_PAYMENT_WEBHOOK_SECRET": " , "}, "SHOPJOBS_PAYMENT_WEBHOOK_SECRET"),
        ({"SHOPJOBS_SMS_API_SECRET": "sms_dev_only"}, "SHOPJOBS_SMS_API_SECRET"),
        ({"SHOPJOBS_VERIFICATION_SECRET": "verify_dev_only"}, "SHOPJOBS_VERIFICATION_SECRET"),
        (
            {"SHOPJOBS_SMTP_USER": "mailer", "SHOPJOBS_SMTP_PASSWORD": "m41l"},
            "SHOPJOBS_SMTP_STARTTLS",
        ),
        (
            {"SHOPJOBS_SMTP_USER": "mailer", "SHOPJOBS_SMTP_STARTTLS": "true"},
            "SHOPJOBS_SMTP_PASSWORD",
        ),
        ({"SHOPJOBS_METRICS_BIND": "0.0.0.0"}, "SHOPJOBS_METRICS_BIND"),
        ({"SHOPJOBS_BROKER": "stub"}, "SHOPJOBS_BROKER"),
        (
            {"SHOPJOBS_BACKUP_DATABASE_URL": "postgresql+psycopg2://postgres:x1@pg/shopjobs"},
            "SHOPJOBS_BACKUP_DATABASE_URL",
        ),
        # a configured endpoint on loopback, link-local or a private range, not listed
        ({"SHOPJOBS_PAYMENT_URL": "http://127.0.0.1:8101"}, "SHOPJOBS_PAYMENT_URL"),
        ({"SHOPJOBS_WAREHOUSE_URL": "http://localhost:8102"}, "SHOPJOBS_WAREHOUSE_URL"),
        ({"SHOPJOBS_CARRIER_URL": "http://10.0.0.7"}, "SHOPJOBS_CARRIER_URL"),
        ({"SHOPJOBS_SMS_URL": "http://169.254.169.254"}, "SHOPJOBS_SMS_URL"),
        (
            {"SHOPJOBS_PRICE_FEED_SOURCES": "primary=https://rates.example,b=http://[::1]:81"},
            "SHOPJOBS_PRICE_FEED_SOURCES",
        ),
    ],
)
def test_production_refuses_each_default_naming_its_variable(override, named):
    with pytest.raises(SettingsError, match=named):
        Settings.from_env({**GOOD, **override})
    # the same values start in development: it is the mode that refuses them
    Settings.from_env({**GOOD, **override, "SHOPJOBS_ENV": "development"})


def test_public_metrics_are_allowed_in_production_when_said_so():
    Settings.from_env(
        {**GOOD, "SHOPJOBS_METRICS_BIND": "0.0.0.0", "SHOPJOBS_METRICS_PUBLIC": "true"}
    )


def test_every_problem_is_listed_at_once_and_no_secret_is_echoed():
    with pytest.raises(SettingsError) as info:
        Settings.from_env(
            {
                "SHOPJOBS_ENV": "production",
                "SHOPJOBS_SMTP_USER": "u",
                "SHOPJOBS_SMTP_PASSWORD": "Sm7p-secret",
            }
        )
    text = str(info.value)
    for variable in (
        "AMQP_URL",
        "DATABASE_URL",
        "PAYMENT_WEBHOOK_SECRET",
        "SMS_API_SECRET",
        "VERIFICATION_SECRET",
        "SMTP_STARTTLS",
    ):
        assert f"SHOPJOBS_{variable}" in text
    assert "Sm7p-secret" not in text


def test_a_production_process_with_a_default_credential_exits_non_zero_naming_it():
    env = {**GOOD, "SHOPJOBS_AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/%2F", "PATH": "/usr/bin"}
    done = subprocess.run(
        [sys.executable, "-c", "import broker"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "SHOPJOBS_AMQP_URL" in done.stderr and "guest" in done.stderr


def test_every_secret_field_is_registered_for_masking():
    settings = Settings.from_env(
        {
            **GOOD,
            "SHOPJOBS_SMTP_USER": "mailer",
            "SHOPJOBS_SMTP_STARTTLS": "1",
            "SHOPJOBS_SMTP_PASSWORD": "Smtp-pw-77",
        }
    )
    found = set(secrets_of(settings))
    expected = {
        "R4bbit-pw",
        "Pg-pw-1",
        "whsec_live_A1b2C3d4",
        "whsec_live_old_E5f6",
        "sms-live-secret",
        "verify-live-secret",
        "Smtp-pw-77",
    }
    assert expected <= found
    register_secrets(found)
    line = "sms-live-secret verify-live-secret whsec_live_old_E5f6 Pg-pw-1"
    assert scrub_text(line) == "[secret] [secret] [secret] [secret]"


def test_a_loopback_endpoint_starts_in_production_when_listed_explicitly():
    Settings.from_env(
        {
            **GOOD,
            "SHOPJOBS_PAYMENT_URL": "http://127.0.0.1:8101",
            "SHOPJOBS_OUTBOUND_ALLOWED_HOSTS": "127.0.0.1:8101",
        }
    )
