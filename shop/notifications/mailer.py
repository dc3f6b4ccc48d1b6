"""Sending one e-mail over SMTP with ``smtplib``, and what its failures mean.

STARTTLS and AUTH when configured; every socket operation times out (at most 10 s). The
outcome is one of the shop's errors, so ``Retries`` does the right thing: a 4xx reply, a
refused or dropped connection and a timeout are ``TransientError`` (retry later); a 5xx
reply is ``PermanentError`` (never retry). Error texts carry the code and the SMTP stage only,
never the server's words, which often echo the recipient's address.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from jobcore.errors import PermanentError, TransientError
from shop.settings import Settings


class SmtpTransient(TransientError):
    """Worth retrying: the server is down, busy, or answered 4xx."""


class SmtpPermanent(PermanentError):
    """The server refused the message for good (5xx)."""


def _reply_error(code: int, stage: str) -> Exception:
    if 400 <= code < 500:
        return SmtpTransient(f"SMTP {code} at {stage}")
    return SmtpPermanent(f"SMTP {code} at {stage}")


def send(settings: Settings, message: EmailMessage, recipients: list[str]) -> None:
    """Hand ``message`` to the SMTP server; returns once it answered 250 to DATA."""
    timeout = min(settings.smtp_timeout_s, 10)
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout) as client:
            client.ehlo()
            if settings.smtp_starttls:
                context = ssl.create_default_context(cafile=settings.smtp_ca_file)
                client.starttls(context=context)
                client.ehlo()
            if settings.smtp_user:
                client.login(settings.smtp_user, settings.smtp_password or "")
            client.send_message(message, from_addr=settings.mail_from, to_addrs=recipients)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = sorted({code for code, _ in exc.recipients.values()})
        raise _reply_error(max(codes) if codes else 550, "RCPT") from None
    except smtplib.SMTPSenderRefused as exc:
        raise _reply_error(exc.smtp_code, "MAIL") from None
    except smtplib.SMTPDataError as exc:
        raise _reply_error(exc.smtp_code, "DATA") from None
    except smtplib.SMTPAuthenticationError as exc:
        raise SmtpPermanent(
            f"SMTP {exc.smtp_code} at AUTH: check SHOPJOBS_SMTP_USER/PASSWORD"
        ) from None
    except smtplib.SMTPResponseException as exc:
        raise _reply_error(exc.smtp_code, "session") from None
    except smtplib.SMTPNotSupportedError:
        raise SmtpPermanent("the SMTP server does not offer STARTTLS/AUTH as configured") from None
    except ssl.SSLError as exc:
        raise SmtpPermanent(f"STARTTLS failed: {exc.reason}") from None
    except (smtplib.SMTPServerDisconnected, TimeoutError) as exc:
        raise SmtpTransient(f"SMTP connection lost or timed out ({type(exc).__name__})") from None
    except OSError as exc:  # refused, unreachable, reset
        raise SmtpTransient(f"SMTP connection failed ({type(exc).__name__})") from None
