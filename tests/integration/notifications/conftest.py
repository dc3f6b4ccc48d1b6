"""The notification tests' fixtures: SMTP and SMS stand-ins (see tests/support/notify.py)."""

from tests.support.notify import mail, notify_parties, sms  # noqa: F401
