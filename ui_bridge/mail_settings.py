"""``[mail]``: the SMTP server the outbox's e-mails are sent through (issue 15, ``docs/complaints.md``).

Why here and not beside the mailer: the daemon (``companion/mailer.py``) sends, ``cti mail`` reports and tests, and
the panel may one day say whether mail is set up at all; ``ui_bridge`` is the lowest package all of them may import
(``docs/architecture.md``). ``companion/config.py`` puts the section into ``Settings``.

No ``host``: no mailer runs. The complaints' e-mails are still queued in the store's outbox (with the change they
tell of), and sent once a host is set and the daemon started again: nothing is lost by setting mail up late.

What is refused at load, because it would go wrong later and far from its cause: a sender address that is not one
(``cti.email_address``), a sender name on two lines (it is a header), a login without a password or the other way
round, and a login over an unencrypted connection (``security = "none"`` is for a relay on the same host or LAN that
needs no password). A password from the environment (``password_env``) and the CA file are checked by
:meth:`MailSettings.problems`, with the files (``cti check-config``; ``cti run`` refuses to start with any).
"""

from __future__ import annotations

import os
import re
import ssl
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from asterisk.settings import ConfigError, Section
from cti.email_address import BadEmail, check_email

#: ``starttls``: connect in plain text, then upgrade (port 587; the upgrade is required: a server that does not
#: offer it gets no mail); ``tls``: TLS from the first byte (port 465); ``none``: no encryption (a local relay).
Security = Literal["starttls", "tls", "none"]
DEFAULT_PORTS: dict[Security, int] = {"starttls": 587, "tls": 465, "none": 25}

#: A host name or an IP address (v6 without brackets): nothing a command line or a header could be made of.
_HOST = re.compile(r"[A-Za-z0-9._:-]{1,253}")


def _one_line(value: str) -> str:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value) or len(value.splitlines()) > 1:
        raise ValueError("one line of text, without control characters (it goes into a mail's header or EHLO)")
    return value


#: One line of text: what goes into a header (the sender's name) or the EHLO command.
OneLine = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_one_line)]
Seconds = Annotated[float, Field(gt=0, le=24 * 3600)]


class MailSettings(Section):
    """``[mail]``: where and how the outbox is sent, and how long a mail is retried (``docs/complaints.md``)."""

    #: The SMTP server; unset: no mailer (mails wait in the outbox).
    host: str | None = None
    #: Its port; unset: 587 for ``starttls``, 465 for ``tls``, 25 for ``none``.
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    security: Security = "starttls"
    #: The login, with ``password`` or ``password_env`` (the name of an environment variable holding it); none: the
    #: server takes mail without a login (a relay that trusts this host).
    username: OneLine | None = None
    password: str | None = None
    password_env: str | None = None
    #: The sender: every mail is from this address (the envelope's and the ``From:`` header's) ...
    from_address: str | None = None
    #: ... under this name.
    from_name: OneLine = "CTI Companion"
    #: A PEM file of certificate authorities to trust besides the system's (a relay with the site's own CA);
    #: relative: to the config file. A server's certificate is always checked.
    ca_file: Path | None = None
    #: The name this host gives in EHLO; unset: its fully qualified name.
    helo_name: OneLine | None = None
    #: Seconds each step of a send (connect, TLS, login, each command) may take.
    timeout: Annotated[float, Field(gt=0, le=600)] = 30.0
    #: A failed try is retried after ``retry_first_seconds``, each next wait ``retry_factor`` times the last, up to
    #: ``retry_max_seconds`` ...
    retry_first_seconds: Seconds = 60.0
    retry_factor: Annotated[float, Field(ge=1, le=10)] = 2.0
    retry_max_seconds: Seconds = 3600.0
    #: ... until the mail is this many hours old: then it is given up, its last error kept (``cti mail status``).
    give_up_hours: Annotated[float, Field(gt=0, le=24 * 90)] = 72.0
    #: How often an idle mailer looks at the outbox (mails queued by another node, retries come due); a mail queued
    #: by this daemon wakes it at once.
    poll_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0

    @field_validator("host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        if value is not None and not _HOST.fullmatch(value):
            raise ValueError("a host name or an IP address (letters, digits, '.', '-', ':')")
        return value

    @field_validator("from_address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return check_email(value)
        except BadEmail as exc:
            raise ValueError(str(exc)) from None

    @field_validator("password")
    @classmethod
    def _password(cls, value: str | None) -> str | None:
        if value is not None and (not value or any(c in value for c in "\r\n\x00")):
            raise ValueError("a password is one line, not empty")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> MailSettings:
        if self.password is not None and self.password_env is not None:
            raise ValueError("give either 'password' or 'password_env', not both")
        has_password = self.password is not None or self.password_env is not None
        if self.username is not None and not has_password:
            raise ValueError("a 'username' needs its 'password' or 'password_env'")
        if has_password and self.username is None:
            raise ValueError("a password needs its 'username'")
        if self.username is not None and self.security == "none":
            raise ValueError("a login is never sent unencrypted: with a username, security is 'starttls' or 'tls'")
        if self.host is not None and self.from_address is None:
            raise ValueError("with a 'host', give 'from_address': the address every mail is sent from")
        if self.retry_first_seconds > self.retry_max_seconds:
            raise ValueError("retry_first_seconds is more than retry_max_seconds")
        return self

    @property
    def enabled(self) -> bool:
        """Whether a mailer runs (a host is set)."""
        return self.host is not None

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else DEFAULT_PORTS[self.security]

    @property
    def server(self) -> str:
        """``host:port (security)``, for messages and logs."""
        how = {"starttls": "STARTTLS", "tls": "TLS", "none": "no encryption"}[self.security]
        return f"{self.host}:{self.effective_port} ({how})"

    def resolved_password(self) -> str | None:
        """The password (read from ``password_env`` now, when given that way); ``ConfigError`` when that variable is
        not set or holds more than one line."""
        if self.password_env is None:
            return self.password
        value = os.environ.get(self.password_env)
        if value is None:
            raise ConfigError(f"[mail] password_env: the environment variable {self.password_env} is not set")
        if not value or any(c in value for c in "\r\n\x00"):
            raise ConfigError(f"[mail] password_env: the environment variable {self.password_env} must hold one "
                              "line, not empty")
        return value

    def problems(self) -> list[str]:
        """What keeps the mailer from starting, one ``mail.key: problem`` line each (none when no host is set)."""
        if not self.enabled:
            return []
        found: list[str] = []
        try:
            self.resolved_password()
        except ConfigError as exc:
            found.append(str(exc).replace("[mail] ", "mail.", 1))
        if self.ca_file is not None:
            if not self.ca_file.is_file():
                found.append(f"mail.ca_file: {self.ca_file}: no such file")
            else:
                try:
                    ssl.create_default_context(cafile=str(self.ca_file))
                except (ssl.SSLError, ValueError) as exc:
                    found.append(f"mail.ca_file: {self.ca_file}: not PEM certificates ({exc})")
                except OSError as exc:
                    found.append(f"mail.ca_file: {self.ca_file}: cannot read: {exc.strerror}")
        return found
