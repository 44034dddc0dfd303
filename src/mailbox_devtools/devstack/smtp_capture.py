"""A real SMTP server that keeps every message as a file instead of delivering it.

Run as its own process (`python -m mailbox_devtools.devstack.smtp_capture --port P --maildir DIR`)
so the service talks SMTP over a socket exactly as in production, and tests can stop it to see
how the worker copes with a dead relay. Each message becomes one `.eml` file whose name sorts by
arrival time; it is written to a hidden temp folder first and renamed, so a reader polling the
maildir never sees half a message. The envelope (which can differ from the headers, e.g. Bcc)
is recorded in `X-Envelope-From` / `X-Envelope-To` lines put in front of the message.

Like a real relay it can refuse a recipient, so tests can see what the service does then: an
address whose local part starts with `refuse-` (`refuse-ann@example.org`) gets `550 5.1.1` to
RCPT (the mailbox does not exist: a permanent failure), one starting with `defer-` gets
`450 4.2.1` (mailbox busy: a transient failure, retried). Every other address is accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

HOSTNAME = "mailbox-stack.invalid"
"""Our EHLO name; fixed so aiosmtpd does not do a slow reverse lookup at start."""
REFUSE_PREFIX = "refuse-"
DEFER_PREFIX = "defer-"


def rcpt_reply(address: str) -> str | None:
    """The refusal for a recipient the capture is told to refuse by its name, else None."""
    local = address.rpartition("@")[0].lower()
    if local.startswith(REFUSE_PREFIX):
        return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
    if local.startswith(DEFER_PREFIX):
        return f"450 4.2.1 <{address}>: Mailbox busy, try again later"
    return None


class MaildirHandler:
    """aiosmtpd handler that writes each accepted message to the maildir."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir
        self.tmp_dir = maildir / ".tmp"
        self.maildir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(exist_ok=True)
        self._last_ns = 0
        self._sequence = itertools.count()

    def _next_name(self) -> str:
        # Nanoseconds keep names in arrival order; forcing them to grow keeps two messages in
        # one clock tick ordered too, and the pid keeps a restarted server from reusing a name.
        now = max(time.time_ns(), self._last_ns + 1)
        self._last_ns = now
        return f"{now:020d}-{os.getpid()}-{next(self._sequence):06d}.eml"

    def store(self, envelope: Envelope) -> Path:
        """Write the message with its envelope lines; return the final path."""
        content = envelope.original_content or b""
        if isinstance(envelope.content, bytes) and not content:
            content = envelope.content
        head = (
            f"X-Envelope-From: <{envelope.mail_from or ''}>\r\n"
            f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        name = self._next_name()
        tmp = self.tmp_dir / name
        tmp.write_bytes(head + content)
        final = self.maildir / name
        os.replace(tmp, final)
        return final

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        refusal = rcpt_reply(address)
        if refusal is not None:
            print(f"refused {address}: {refusal[:3]}", flush=True)
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        path = self.store(envelope)
        print(f"captured {path.name} from {envelope.mail_from} to {envelope.rcpt_tos}", flush=True)
        return "250 Message accepted for delivery"


def accept_any_login(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    """A client configured with a username still gets its mail through: any login passes."""
    return AuthResult(success=True)


async def serve(host: str, port: int, maildir: Path) -> None:
    """Serve until SIGTERM/SIGINT."""
    handler = MaildirHandler(maildir)
    loop = asyncio.get_running_loop()

    def factory() -> SMTP:
        return SMTP(
            handler,
            hostname=HOSTNAME,
            enable_SMTPUTF8=True,
            data_size_limit=64 * 1024 * 1024,
            authenticator=accept_any_login,
            auth_require_tls=False,
            loop=loop,
        )

    server = await loop.create_server(factory, host=host, port=port, reuse_address=True)
    stopped = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    print(f"smtp capture listening on {host}:{port}, writing to {maildir}", flush=True)
    await stopped.wait()
    server.close()
    await server.wait_closed()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--maildir", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.host, args.port, args.maildir))
    except OSError as exc:
        print(f"smtp capture could not listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
