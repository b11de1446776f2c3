"""Delivery of verification codes: the server log (console mode) or SMTP."""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from typing import Protocol

import anyio.to_thread

from chatstream.config import Settings

log = logging.getLogger("chatstream.mail")


class Mailer(Protocol):
    async def send(self, to: str, subject: str, body: str) -> None: ...


class ConsoleMailer:
    """Writes the message to the server log: the default, for a server without mail."""

    async def send(self, to: str, subject: str, body: str) -> None:
        log.warning("mail to %s: %s: %s", to, subject, body)


class SmtpMailer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self._settings.smtp_from
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        # smtplib blocks; a code mail is rare enough for a worker thread.
        await anyio.to_thread.run_sync(self._send_blocking, message)

    def _send_blocking(self, message: EmailMessage) -> None:
        s = self._settings
        client: smtplib.SMTP
        if s.smtp_ssl:
            client = smtplib.SMTP_SSL(
                s.smtp_host, s.smtp_port, timeout=20, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=20)
        with client:
            if s.smtp_starttls:
                client.starttls(context=ssl.create_default_context())
            if s.smtp_username:
                client.login(s.smtp_username, s.smtp_password.get_secret_value())
            client.send_message(message)
