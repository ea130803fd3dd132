"""Which ``Host`` names the panel answers to: the defence against DNS rebinding.

Why: a page on ``evil.example`` can make its own name resolve to the panel's address; the browser then
sends the panel requests whose ``Origin`` and ``Host`` are both ``evil.example``, so an Origin check alone
passes. Refusing any ``Host`` that is not the panel's own closes that door, before any login.

The panel's own names are: IP literals (an attacker cannot make a browser send one for his page: a
rebinding page always has a name), ``localhost``, this machine's host names, and ``[http] allowed_hosts``
(the public name behind a reverse proxy). Starlette's ``TrustedHostMiddleware`` knows only a fixed list
of names, not "any IP literal", hence this module.

This machine's names come from ``socket.getfqdn()``, which may ask DNS: it runs once, in a thread, and
only when a request names a host that no other rule accepts.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable

_PORT = re.compile(r":[0-9]{1,5}")
#: A DNS name (RFC 1123 labels), without the trailing dot.
_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*")


class HostRefused(Exception):
    """The request names a host the panel does not answer to; ``str()`` says which and what to do."""

    def __init__(self, message: str, malformed: bool = False) -> None:
        super().__init__(message)
        self.malformed = malformed


def host_name(header: str) -> str:
    """The name or address in a ``Host`` header, lower case, without port or brackets; HostRefused if malformed."""
    value = header.strip().lower()
    if value.startswith("["):
        address, bracket, port = value[1:].partition("]")
        if not bracket or (port and not _PORT.fullmatch(port)):
            raise HostRefused(f"{header[:100]!r} is not a host name", malformed=True)
        try:
            ipaddress.IPv6Address(address)
        except ValueError:
            raise HostRefused(f"{header[:100]!r} is not a host name", malformed=True) from None
        return address
    name, colon, port = value.partition(":")
    if (colon and not _PORT.fullmatch(colon + port)) or not _NAME.fullmatch(name.removesuffix(".")):
        raise HostRefused(f"{header[:100]!r} is not a host name", malformed=True)
    return name.removesuffix(".")


def _configured(entry: str) -> str:
    """An ``allowed_hosts`` entry as compared: a port written with it is not part of the name."""
    try:
        return host_name(entry)
    except HostRefused:
        return entry.strip().lower()


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _machine_names() -> frozenset[str]:
    names = {socket.gethostname(), socket.getfqdn()}
    return frozenset(n.lower().removesuffix(".") for n in names if n)


class HostAllowList:
    def __init__(self, allowed: Iterable[str]) -> None:
        self.allowed = frozenset(_configured(h) for h in allowed) | {"localhost"}
        self._machine: asyncio.Task[frozenset[str]] | None = None

    async def check(self, header: str | None) -> None:
        """Return if the panel answers to this ``Host`` header; raise HostRefused if not.

        No header at all is an HTTP/1.0 client, never a browser (the only thing rebinding can steer): let it be.
        """
        if header is None:
            return
        name = host_name(header)
        if name in self.allowed or _is_ip_literal(name):
            return
        if self._machine is None:
            self._machine = asyncio.ensure_future(asyncio.to_thread(_machine_names))
        if name in await asyncio.shield(self._machine):
            return
        raise HostRefused(f"this panel does not answer to the host name {name!r}: open it by its address or "
                          "by a name listed in [http] allowed_hosts")
