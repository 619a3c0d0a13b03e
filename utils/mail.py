"""Sending one e-mail over SMTP (smtplib, the standard library), in two phases so the caller
knows when the outcome stops being certain: everything up to the message's data
(connection, TLS, login, sender, recipients) can fail without the server having the
message; once the data goes out, only the server's answer says whether it took it.

TLS is always verified (the system's CAs, plus `ca_file` when given): STARTTLS (refused if
the server does not offer it) or SMTPS (implicit TLS). The password is never logged."""
from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY   # CRLF line ends, as the wire wants
from pathlib import Path
from typing import Callable


class MailError(Exception):
    """The mail server, or the way to it, failed. `transient`: try again later (the
    failure policy reads it); `code`: the server's reply code, if it answered."""

    def __init__(self, message: str, *, transient: bool, code: int | None = None,
                 handed_over: bool = False) -> None:
        super().__init__(message)
        self.transient = transient
        self.code = code
        # The data had gone out when this happened and no answer came: the server may have it.
        self.handed_over = handed_over


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    security: str                 # "starttls" or "smtps"
    login: str
    password: str = field(repr=False)
    ca_file: Path | None = None
    timeout: float = 30.0

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.ca_file is not None:
            context.load_verify_locations(cafile=str(self.ca_file))
        return context


def _refusal(what: str, exc: smtplib.SMTPResponseException) -> MailError:
    text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
    code = int(exc.smtp_code)
    return MailError(f"{what}: {code} {text[:300]}", transient=400 <= code < 500, code=code)


def send(server: SmtpServer, message: EmailMessage, recipients: list[str],
         before_data: Callable[[], bool]) -> None:
    """Send `message` to `recipients`. `before_data()` is called (and must have recorded
    durably that the outcome may be unknown from now on) right before the data goes out;
    if it returns False nothing is sent. Raises MailError."""
    sender = str(message["From"])
    try:
        if server.security == "smtps":
            client = smtplib.SMTP_SSL(server.host, server.port, timeout=server.timeout,
                                      context=server.context())
        else:
            client = smtplib.SMTP(server.host, server.port, timeout=server.timeout)
    except ssl.SSLCertVerificationError as exc:
        raise MailError(f"the mail server's certificate is not trusted: {exc.verify_message}",
                        transient=False) from None
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"cannot reach the mail server {server.host}:{server.port}: "
                        f"{type(exc).__name__}", transient=True) from None
    try:
        try:
            client.ehlo()
            if server.security == "starttls":
                if not client.has_extn("starttls"):
                    raise MailError("the mail server offers no STARTTLS", transient=False)
                client.starttls(context=server.context())
                client.ehlo()
            client.login(server.login, server.password)
            code, reply = client.mail(sender)
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, reply, sender)
            refused = []
            for rcpt in recipients:
                code, reply = client.rcpt(rcpt)
                if code not in (250, 251):
                    refused.append((rcpt, code, reply))
            if len(refused) == len(recipients):
                rcpt, code, reply = refused[0]
                raise smtplib.SMTPResponseException(code, reply)
        except smtplib.SMTPAuthenticationError as exc:
            raise _refusal("the mail server refused the login", exc) from None
        except smtplib.SMTPResponseException as exc:
            raise _refusal("the mail server refused the message", exc) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise MailError(f"the mail server cannot do what KeepDesk needs: {exc}", transient=False) from None
        except ssl.SSLCertVerificationError as exc:
            raise MailError(f"the mail server's certificate is not trusted: {exc.verify_message}",
                            transient=False) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"the mail server {server.host}:{server.port} failed before the message:"
                            f" {type(exc).__name__}: {str(exc)[:200]}", transient=True) from None
        if not before_data():
            return
        try:
            code, reply = client.data(message.as_bytes(policy=SMTP_POLICY))
        except smtplib.SMTPResponseException as exc:
            raise _refusal("the mail server refused the message", exc) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"the connection ended while the message was handed over:"
                            f" {type(exc).__name__}", transient=False, handed_over=True) from None
        if code != 250:
            raise _refusal("the mail server refused the message",
                           smtplib.SMTPResponseException(code, reply))
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()
