"""Mail over SMTP: STARTTLS (or TLS from the first byte), a login whose password comes
from a secret, one message per notification.

Each attempt is one connection. A refusal the server calls temporary (a 4xx reply), a
dropped connection or a timeout is tried again (see _webhook.retrying); a 5xx reply, a
refused login, a certificate that does not verify or a server without STARTTLS is
final: trying again would only repeat it.
"""

from __future__ import annotations

import email.policy
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from ._channels import Email
from ._webhook import Failure


def message(settings: Email, subject: str, body: str, run_id: str | None) -> EmailMessage:
    """The mail: plain text, with the run id in a header a mail filter can sort by."""
    # Headers on one line up to RFC 5322's 998 characters: folded at 78, a long subject
    # came back from Python's folding with a leading space.
    mail = EmailMessage(policy=email.policy.SMTP.clone(max_line_length=998))
    mail["From"], mail["To"], mail["Subject"] = settings.sender, ", ".join(settings.to), subject
    mail["Date"], mail["Message-ID"] = formatdate(localtime=False), make_msgid("runbook")
    if run_id:
        mail["X-Runbook-Run"] = run_id
    mail.set_content(body)
    return mail


def send(settings: Email, password: str | None, mail: EmailMessage, timeout: float) -> None:
    """One attempt to hand `mail` to the server; Failure saying whether to try again."""
    context = ssl.create_default_context(cafile=settings.ca_file)
    try:
        with _connect(settings, context, timeout) as smtp:
            if settings.security == "starttls":
                smtp.starttls(context=context)
            if settings.username is not None:
                smtp.login(settings.username, password or "")
            refused = smtp.send_message(mail)
    except smtplib.SMTPNotSupportedError as exc:  # no STARTTLS, or no AUTH: never log in in the clear
        raise Failure(f"{settings.host}:{settings.port}: {str(exc).rstrip('.')}: nothing was sent",
                      retry=False) from None
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        raise Failure(f"recipients refused: {_refused(exc.recipients)}",
                      retry=all(400 <= c < 500 for c in codes)) from None
    except smtplib.SMTPResponseException as exc:
        said = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        what = "login refused" if isinstance(exc, smtplib.SMTPAuthenticationError) else "SMTP"
        raise Failure(f"{what}: {exc.smtp_code} {said}"[:300], retry=400 <= exc.smtp_code < 500) from None
    except ssl.SSLError as exc:
        raise Failure(f"TLS with {settings.host}:{settings.port}: {exc.reason or exc}", retry=False) from None
    except (smtplib.SMTPException, OSError) as exc:  # a dropped connection, refused, a timeout
        raise Failure(f"{settings.host}:{settings.port}: {_reason(exc)}", retry=True) from None
    if refused:  # the others have it: sending again would repeat it to them
        raise Failure(f"not delivered to {_refused(refused)}", retry=False)


def _connect(settings: Email, context: ssl.SSLContext, timeout: float) -> smtplib.SMTP:
    if settings.security == "tls":
        return smtplib.SMTP_SSL(settings.host, settings.port, timeout=timeout, context=context)
    return smtplib.SMTP(settings.host, settings.port, timeout=timeout)


def _refused(recipients: dict[str, tuple[int, bytes]]) -> str:
    return ", ".join(f"{who} ({code})" for who, (code, _) in recipients.items())


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
