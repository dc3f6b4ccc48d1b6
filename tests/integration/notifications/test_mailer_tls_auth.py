"""The mailer's STARTTLS and AUTH against a real SMTP server that requires both."""

from __future__ import annotations

import dataclasses
import subprocess
from email.message import EmailMessage

import pytest

from devtools.stand_ins.smtp import start_smtp_stand_in
from shop.notifications import mailer
from shop.settings import Settings


@pytest.fixture(scope="module")
def secure_smtp(tmp_path_factory):
    # a self-signed certificate for 127.0.0.1, trusted through SHOPJOBS_SMTP_CA_FILE
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    server = start_smtp_stand_in(
        extra_args=[
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
            "--auth-user",
            "shop",
            "--auth-password",
            "pw-123",
        ]
    )
    host, port = server.smtp_address()
    settings = dataclasses.replace(
        Settings(),
        smtp_host=host,
        smtp_port=port,
        smtp_starttls=True,
        smtp_ca_file=str(cert),
        smtp_user="shop",
        smtp_password="pw-123",
    )
    yield server, settings
    server.stop()


def _message() -> EmailMessage:
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = (
        "tls",
        "shop@example.test",
        "r@example.test",
    )
    message["Message-ID"] = "<tls-1@example.test>"
    message.set_content("over TLS")
    return message


def test_starttls_and_auth_deliver_the_message(secure_smtp):
    server, settings = secure_smtp
    mailer.send(settings, _message(), ["r@example.test"])
    assert [m["message_id"] for m in server.messages(raw=False)] == ["<tls-1@example.test>"]


def test_a_wrong_password_is_permanent_and_plaintext_is_refused(secure_smtp):
    _, settings = secure_smtp
    with pytest.raises(mailer.SmtpPermanent, match="AUTH"):
        mailer.send(
            dataclasses.replace(settings, smtp_password="wrong"), _message(), ["r@example.test"]
        )
    with pytest.raises(mailer.SmtpPermanent):
        mailer.send(
            dataclasses.replace(settings, smtp_starttls=False), _message(), ["r@example.test"]
        )
