"""A real SMTP server for the tests: aiosmtpd on 127.0.0.1, STARTTLS with a trustme certificate, a login.

The mailer's tests (and the complaints' API tests, which check the e-mails a complaint sends) talk to it over a real
socket, the way the daemon talks to a site's server. Nothing in it is a mock of the client: it is the aiosmtpd
server, in its own thread and event loop (its ``Controller``), keeping what it took.

* :meth:`MailServer.start` listens on its port (chosen free at construction, so a test can point ``[mail]`` at it
  before it is up: "the server is down at first"), :meth:`stop` closes it; started again, it listens on the same port.
* ``refuse``: the answer to every mail's data (``"554 5.7.1 …"``): a server that refuses permanently.
* :meth:`wait_for` waits (on a condition, at most some time units) until so many mails came.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.conftest import UNIT


def free_port() -> int:
    """A TCP port nobody listens on now (for a server started later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Received:
    """One mail the server took: the envelope, the bytes as they came, the message parsed."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    message: EmailMessage
    #: Whether the session was encrypted (STARTTLS or TLS) when the mail came, and the login it came under.
    encrypted: bool
    login: str | None


@dataclass(frozen=True)
class SmtpCa:
    """A certificate authority of the test (trustme) and its PEM file, for ``[mail] ca_file``."""

    ca: trustme.CA
    ca_file: Path

    @classmethod
    def make(cls, folder: Path) -> SmtpCa:
        ca = trustme.CA()
        path = folder / "test-ca.pem"
        ca.cert_pem.write_to_path(str(path))
        return cls(ca, path)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        return context


class _Handler:
    def __init__(self, server: MailServer) -> None:
        self.server = server

    async def handle_DATA(self, _smtp: SMTP, session: Session, envelope: Envelope) -> str:
        if self.server.refuse is not None:
            return self.server.refuse
        data = envelope.original_content or b""
        message = email.message_from_bytes(data, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        received = Received(str(envelope.mail_from), tuple(envelope.rcpt_tos), data, message,
                            encrypted=session.ssl is not None, login=login)
        with self.server.lock:
            self.server.received.append(received)
        return "250 2.0.0 Ok: queued as T1"


class MailServer:
    """aiosmtpd on ``127.0.0.1:port`` (module docstring). ``ca``: STARTTLS offered (and required) with a certificate
    of that CA; ``login``: (user, password) required after STARTTLS."""

    def __init__(self, *, ca: SmtpCa | None = None, login: tuple[str, str] | None = None,
                 port: int | None = None) -> None:
        self.port = port or free_port()
        self.ca = ca
        self.login = login
        #: The answer to every mail's data instead of "250" (a refusing server); None: mails are taken.
        self.refuse: str | None = None
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self._controller: Controller | None = None

    def _authenticate(self, _server: SMTP, _session: Session, _envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and self.login is not None
              and (auth_data.login.decode(), auth_data.password.decode()) == self.login)
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    def start(self) -> MailServer:
        kwargs: dict[str, Any] = {}
        if self.ca is not None:
            kwargs.update(tls_context=self.ca.server_context(), require_starttls=True)
        if self.login is not None:
            kwargs.update(authenticator=self._authenticate, auth_required=True, auth_require_tls=True)
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port,
                                      ready_timeout=10 * UNIT, **kwargs)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> MailServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def mails(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The mails once at least ``count`` came (``AssertionError`` after ``timeout`` time units)."""
        deadline = time.monotonic() + timeout * UNIT
        while len(got := self.mails()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(got)} mail(s) came, {count} expected")
            await asyncio.sleep(0.02)
        return got
