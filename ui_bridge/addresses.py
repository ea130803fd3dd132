"""The real address of a panel client, behind a reverse proxy or not: one rule, used by everything.

Why it matters: the login limiter, the connection limits and the log all key on "who is this". Behind the
reverse proxy the docs recommend, every TCP peer is the proxy (127.0.0.1), so five typos from one agent
would count against the whole call centre; and a client that is *not* behind the proxy must not choose its
own address by sending ``X-Forwarded-For``.

The rule (the one uvicorn's and Werkzeug's proxy fixes follow): when the TCP peer is one of
``[http] trusted_proxies``, walk ``X-Forwarded-For`` from the right (each proxy appends the address it
saw) past the entries that are trusted proxies themselves; the first one that is not is the client. Anything
to its left was written by the client and is ignored. A peer that is not a trusted proxy is the client, and
its ``X-Forwarded-For`` is ignored. A malformed entry ends the walk at the last trusted hop (the proxy
itself), so garbage never becomes an address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from starlette.requests import HTTPConnection

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

UNKNOWN = "?"


def parse_ip(text: str) -> IPAddress | None:
    """An address from a peer or an ``X-Forwarded-For`` entry (``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``,
    ``::ffff:1.2.3.4``); None when it is not one."""
    text = text.strip()
    if text.startswith("["):  # [v6] or [v6]:port
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_trusted(address: IPAddress, trusted: Sequence[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in trusted)


def real_client(peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[IPNetwork]) -> str:
    """The client's address as text, from the TCP ``peer`` and the ``X-Forwarded-For`` header values (in
    the order they came; each may hold a comma-separated list). See the module's docstring for the rule."""
    peer_ip = parse_ip(peer) if peer else None
    if peer_ip is None:
        return peer or UNKNOWN
    if not trusted or not is_trusted(peer_ip, trusted):
        return str(peer_ip)
    hops = [item for value in forwarded_for for item in value.split(",") if item.strip()]
    client = peer_ip
    for entry in reversed(hops):
        address = parse_ip(entry)
        if address is None:
            break  # not written by a proxy we trust: stop at the last hop we do
        client = address
        if not is_trusted(address, trusted):
            break
    return str(client)


def client_address(conn: HTTPConnection, trusted: Sequence[IPNetwork]) -> str:
    """The real client of an HTTP request or a WebSocket handshake (``[http] trusted_proxies``)."""
    peer = conn.client.host if conn.client else None
    return real_client(peer, conn.headers.getlist("x-forwarded-for"), trusted)
