"""SmtpSender against the real SMTP capture: login, a relay that drops idle connections,
and the plain-text stats an operator reads."""

from __future__ import annotations

import email
import os
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import msgspec

from app_fixtures import cli, invoice_metadata, post_document
from mailbox_service.mail.smtp import SmtpSender
from mailbox_service.settings import Settings


def _message(subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Mailbox <no-reply@example.org>"
    message["To"] = "kim@example.org"
    message["Subject"] = subject
    message.set_content("A document is waiting in your mailbox.")
    return message


def _delivered(subject: str, timeout: float = 10) -> bool:
    maildir = Path(os.environ["MAILBOX_STACK_MAILDIR"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in maildir.glob("*.eml"):
            if email.message_from_bytes(path.read_bytes())["Subject"] == subject:
                return True
        time.sleep(0.05)
    return False


def test_login_and_reconnect_after_the_relay_dropped_the_connection(
    settings: Settings, stack: Any
) -> None:
    smtp = msgspec.structs.replace(settings.smtp, username="relay-user", password="relay-pass")
    sender = SmtpSender(smtp, local_hostname="worker.test")
    try:
        sender.send(
            _message("first over a fresh login"),
            envelope_from="no-reply@example.org",
            recipient="kim@example.org",
        )
        assert _delivered("first over a fresh login")

        # The relay restarts: the kept-open connection is dead; the next send reconnects once.
        stack.stop("smtp")
        stack.start("smtp")
        sender.send(
            _message("second after a reconnect"),
            envelope_from="no-reply@example.org",
            recipient="kim@example.org",
        )
        assert _delivered("second after a reconnect")
    finally:
        sender.close()
    sender.close()  # closing twice is harmless


async def test_stats_in_plain_text(client: Any, ingest_key: str, paperless_account: str) -> None:
    response = await post_document(client, ingest_key, invoice_metadata(paperless_account))
    assert response.status_code == 201
    text = cli("notifications", "stats").stdout
    assert text.startswith("documents created ")
    assert "email" in text
    assert "by type" in text
    assert "per day" in text
    assert "invoice" in text
