"""The development SMTP capture is a real SMTP server that keeps every message as a file."""

from __future__ import annotations

import email
import signal
import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

from app_fixtures import free_port


def _wait_listening(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "listening" in line, line


def test_capture_stores_each_message_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    maildir = tmp_path / "mail"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mailbox_devtools.devstack.smtp_capture",
            "--port",
            str(port),
            "--maildir",
            str(maildir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_listening(process)
        message = EmailMessage()
        message["From"] = "Mailbox <no-reply@example.org>"
        message["To"] = "ann@example.org"
        message["Subject"] = "Ihre Rechnung"
        message.set_content("Betrag: 84,20 €")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.login("any-user", "any-password")  # a configured relay login still delivers
            client.send_message(message, to_addrs=["ann@example.org", "bcc@example.org"])
            client.send_message(message)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(list(maildir.glob("*.eml"))) < 2:
            time.sleep(0.05)
        files = sorted(maildir.glob("*.eml"))
        assert len(files) == 2
        stored = email.message_from_bytes(files[0].read_bytes())
        assert stored["Subject"] == "Ihre Rechnung"
        assert "bcc@example.org" in stored["X-Envelope-To"]
        assert not list((maildir / ".tmp").glob("*"))  # written atomically: nothing half-done
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
