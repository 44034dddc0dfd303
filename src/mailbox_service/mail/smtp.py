"""SmtpSender: hands composed messages to the SMTP relay, and says whether a failure is final.

Each worker thread keeps its own connection open between messages (a connection per message
costs a TCP and EHLO round trip, and STARTTLS and AUTH when configured). A kept connection the
relay has closed in the meantime is replaced once, before anything was sent on it.

Classification, per RFC 5321: a 5xx reply to RCPT or DATA rejects this message for good
(`PermanentFailure`); everything else (connection refused or dropped, timeouts, 4xx, a relay that
rejects our login or sender) is about the relay, not the message, and is retried
(`TransientFailure`).
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import threading
from email.message import EmailMessage
from typing import TYPE_CHECKING

from mailbox_service.mail.failures import (
    PermanentFailure,
    RelayRefused,
    TransientFailure,
)
from mailbox_service.observability.metrics import observe
from mailbox_service.settings import SmtpSettings

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        text = (
            exc.smtp_error.decode(errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else exc.smtp_error
        )
        return f"SMTP {exc.smtp_code} {text}".strip()
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = "; ".join(
            f"{rcpt}: {code} {msg.decode(errors='replace') if isinstance(msg, bytes) else msg}"
            for rcpt, (code, msg) in exc.recipients.items()
        )
        return f"SMTP recipient refused: {refused}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def classify(exc: BaseException) -> TransientFailure | PermanentFailure:
    """Map an smtplib/socket error to a transient or permanent failure."""
    message = _describe(exc)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        if codes and all(code >= 500 for code in codes):
            return RelayRefused(message)
        return TransientFailure(message)
    if (
        isinstance(exc, smtplib.SMTPDataError | smtplib.SMTPNotSupportedError)
        and getattr(exc, "smtp_code", 0) >= 500
    ):
        return RelayRefused(message)
    return TransientFailure(message)


class _RelaySession(smtplib.SMTP):
    """smtplib.SMTP that keeps the relay's reply to DATA, which `sendmail` discards: the
    reply ("250 2.0.0 Ok: queued as 4F3A...") is the relay's receipt, kept as evidence."""

    data_reply: str = ""

    def data(self, msg: ReadableBuffer | str) -> tuple[int, bytes]:
        code, text = super().data(msg)
        self.data_reply = f"{code} {text.decode(errors='replace')}".strip()
        return code, text


MAX_REPLY_CHARS = 512
"""A relay's reply is stored on the document; a longer one is cut (it is a receipt, not data)."""


class SmtpSender:
    def __init__(self, settings: SmtpSettings, *, local_hostname: str | None = None) -> None:
        self.settings = settings
        # Our own name for EHLO; smtplib would otherwise ask DNS for the FQDN on every connect.
        self.local_hostname = local_hostname or socket.gethostname() or "localhost"
        self._local = threading.local()

    def _connect(self) -> _RelaySession:
        s = self.settings
        conn = _RelaySession(
            s.host, s.port, timeout=s.timeout_s, local_hostname=self.local_hostname
        )
        try:
            conn.ehlo()
            if s.starttls:
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
            if s.username:
                conn.login(s.username, s.password)
        except BaseException:
            self._quietly_close(conn)
            raise
        return conn

    @staticmethod
    def _quietly_close(conn: smtplib.SMTP) -> None:
        try:
            conn.close()
        except Exception:  # already broken: nothing more to do
            return

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            self._quietly_close(conn)

    def send(self, message: EmailMessage | bytes, *, envelope_from: str, recipient: str) -> str:
        """Deliver to the relay and return its reply to the message (code and text); raise
        TransientFailure or PermanentFailure on refusal.
        `message` as an object or as its bytes with CRLF line ends."""
        data = message if isinstance(message, bytes) else message.as_bytes()
        with observe("smtp", "send"):
            return self._send(data, envelope_from, recipient)[:MAX_REPLY_CHARS]

    def _send(self, data: bytes, envelope_from: str, recipient: str) -> str:
        try:
            conn = getattr(self._local, "conn", None)
            reused = conn is not None
            if conn is None:
                conn = self._local.conn = self._connect()
            try:
                conn.sendmail(envelope_from, [recipient], data)
            except smtplib.SMTPServerDisconnected:
                if not reused:
                    raise
                # The relay closed an idle connection: reconnect once and send on a fresh one.
                self._drop()
                conn = self._local.conn = self._connect()
                conn.sendmail(envelope_from, [recipient], data)
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise classify(exc) from exc
        return conn.data_reply

    def close(self) -> None:
        """Close this thread's connection (worker threads call it when they stop)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            try:
                conn.quit()
            except Exception:
                self._quietly_close(conn)
            self._local.conn = None
