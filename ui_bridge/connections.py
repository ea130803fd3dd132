"""The panel's TCP connections: how many, from whom, and how long a client may take to say what it wants.

Why here and not in the application: ASGI sees a request only once its headers are complete, so a client
that opens thousands of connections and never finishes a request (slowloris) is invisible to it, and
uvicorn's HTTP protocols have no header timeout of their own. These uvicorn protocol subclasses add:

* **a request timeout**: from the moment a connection is made, and again from the first byte of each next
  request on a kept-alive connection, the client has ``[http] header_timeout`` seconds to send the whole
  request, headers and body (bodies are small: see limits.py), or the connection is closed. A client that
  trickles its body is as stuck as one that trickles its headers. (Between requests uvicorn's keep-alive
  timeout applies; a WebSocket, once upgraded, has its own pings.)
* **connection bounds**: at most ``[http] max_connections`` open connections in all and
  ``max_connections_per_address`` from one TCP peer address. A connection over a bound is answered 503 and
  closed at once; connections already open are never touched, so agents' established WebSockets stay.
  Peers in ``[http] trusted_proxies`` are exempt from the per-address bound: a reverse proxy carries everyone
  (the total still applies).

A connection's place in the counts lasts as long as the TCP connection: when a request is upgraded to a
WebSocket, the place moves to the WebSocket protocol, which gives it back when the socket closes.

Why ``CtiWebSocketProtocol``: ASGI gives an application no way to abort a TCP connection whose peer stopped
reading (a close frame cannot get through a full buffer); it puts the transport's ``abort`` into the
connection scope (``scope["extensions"]["cti.abort"]``) for the hub's last resort. It also logs refused
handshakes at a bounded rate, one line of ours instead of uvicorn's two (and its spurious ERROR).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Sequence
from typing import Any, ClassVar

import h11
from uvicorn._types import ASGISendEvent
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

from .addresses import IPNetwork, is_trusted, parse_ip
from .lograte import RateLimitedLog

log = logging.getLogger(__name__)

#: The kernel's send buffer of a WebSocket connection. Left alone, Linux grows it up to ``tcp_wmem``'s
#: maximum (4 MiB) for a peer that stopped reading, so 500 stuck clients could pin 2 GiB of kernel memory
#: and a stuck client would take minutes to be noticed. 64 KiB is ample for pops at LAN or WAN latencies.
SEND_BUFFER_BYTES = 64 * 1024

_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 38\r\n"
         b"Connection: close\r\nRetry-After: 10\r\n\r\ntoo many connections: try again later\n")


#: The client's h11 states while a request is still on its way in.
_SENDING = (h11.IDLE, h11.SEND_BODY)


_BAD_HANDSHAKE = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 30\r\n"
                  b"Connection: close\r\n\r\nmalformed WebSocket handshake\n")


class Slot:
    """One connection's place in the counts; ``release`` gives it back (once, however often it is called)."""

    def __init__(self, guard: ConnectionGuard, address: str | None) -> None:
        self.guard = guard
        self.address = address
        self.released = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.guard._release(self)


class ConnectionGuard:
    """Counts open connections in all and per peer address, and admits a new one only within the bounds."""

    def __init__(self, max_total: int, max_per_address: int, trusted: Sequence[IPNetwork] = ()) -> None:
        self.max_total = max_total
        self.max_per_address = max_per_address
        self.trusted = list(trusted)
        self.total = 0
        self.by_address: dict[str, int] = {}

    def admit(self, peer: str | None) -> Slot | None:
        """A slot for a new connection from ``peer`` (its TCP address), or None: close it."""
        if self.total >= self.max_total:
            return None
        ip = parse_ip(peer) if peer else None
        address = None if ip is not None and is_trusted(ip, self.trusted) else (str(ip) if ip else peer)
        if address is not None:
            if self.by_address.get(address, 0) >= self.max_per_address:
                return None
            self.by_address[address] = self.by_address.get(address, 0) + 1
        self.total += 1
        return Slot(self, address)

    def _release(self, slot: Slot) -> None:
        self.total -= 1
        if slot.address is not None:
            left = self.by_address[slot.address] - 1
            if left:
                self.by_address[slot.address] = left
            else:
                del self.by_address[slot.address]


class CtiWebSocketProtocol(WebSocketsSansIOProtocol):
    refusals: ClassVar[RateLimitedLog]
    slot: Slot | None = None  # handed over by the HTTP protocol that upgraded the connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # see server.listening_socket()
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.slot is not None:
            self.slot.release()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self.handshake_initiated and self.conn.handshake_exc is not None and not self.transport.is_closing():
            # The websockets library could not parse the handshake (a control character in a header, say): it
            # answers some such requests and silently waits forever on others. Answer, and close.
            self._refused(400, f"malformed handshake: {self.conn.handshake_exc}")
            output = [chunk for chunk in self.conn.data_to_send() if chunk]
            self.transport.write(b"".join(output) or _BAD_HANDSHAKE)
            self.transport.close()

    def send_receive_event_to_app(self) -> None:
        if self.curr_msg_data_type == "text" and not self.close_sent:
            try:
                b"".join(self.frames).decode()
            except UnicodeDecodeError:  # uvicorn would log this at ERROR, with a traceback, for every such frame
                self.frames = []
                self._refused_frame("a text frame that is not UTF-8")
                self.conn.send_close(1007, "text frames must be UTF-8")
                self.handle_parser_exception()
                return
        super().send_receive_event_to_app()

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if self.response.status_code != 101:  # refused by the websockets library itself (a malformed handshake)
            self._refused(self.response.status_code, self.response.reason_phrase)
            return
        scope: Any = self.scope
        scope["extensions"]["cti.abort"] = {"abort": self.transport.abort}

    async def send(self, message: ASGISendEvent) -> None:
        if message["type"] == "websocket.close" and not self.handshake_complete and self.initial_response is None:
            self._refused(403, "closed before accepting")
        await super().send(message)
        if (message["type"] == "websocket.http.response.body" and not message.get("more_body", False)
                and self.initial_response is not None and not self.handshake_complete):
            # uvicorn leaves this unset after a denial response and then logs "ASGI callable returned without
            # completing handshake." at ERROR for every refusal; the handshake is complete: it was refused.
            self.handshake_complete = True
            status, _, body = self.initial_response
            self._refused(status, body[:100].decode("utf-8", "replace").strip())

    def _refused_frame(self, what: str) -> None:
        client = self.client[0] if self.client else "?"
        self.refusals(logging.INFO, "ws-frame", "panel: WebSocket from %s sent %s: closed (1007)", client, what)

    def _refused(self, status: int, why: str) -> None:
        client = self.client[0] if self.client else "?"
        self.refusals(logging.INFO if status in (401, 429) else logging.WARNING, f"ws{status}",
                      "panel: WebSocket handshake from %s refused (%d%s)", client, status, f": {why}" if why else "")


class CtiHttpProtocol(H11Protocol):
    """uvicorn's h11 protocol with the connection bounds and the header timeout (see the module's docstring)."""

    guard: ClassVar[ConnectionGuard]
    header_timeout: ClassVar[float]
    refusals: ClassVar[RateLimitedLog]

    _slot: Slot | None = None
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._slot = self.guard.admit(self.client[0] if self.client else None)
        if self._slot is None:
            self.refusals(logging.WARNING, "busy", "panel: connection from %s refused: over [http] "
                          "max_connections (%d) or max_connections_per_address (%d)",
                          self.client[0] if self.client else "?", self.guard.max_total, self.guard.max_per_address)
            transport.write(_BUSY)
            transport.close()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._slot is not None:
            self._slot.release()
            self._slot = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._slot is None:
            return  # refused at connection_made: closing
        if self.conn.their_state is h11.IDLE:
            self._arm()  # a request is starting: the first, or the next one on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state not in _SENDING:
            self._disarm()  # the whole request is in (or the connection is switching to a WebSocket)

    def send_400_response(self, msg: str) -> None:
        """uvicorn answers bytes h11 cannot parse with a 400 of its own, even while the application is still
        answering the request before them (a GET with a broken chunked body; the rest of a body after a 413):
        the application's answer then failed inside uvicorn, or the 400 itself did (an ERROR with a traceback
        either way). The application's exchange is marked as gone first, and a 400 goes out only when h11 can
        still send one; otherwise the connection is just closed."""
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            try:
                super().send_400_response(msg)
            except h11.LocalProtocolError:  # e.g. a HEAD request: h11 refuses the 400's body; just close
                self.transport.close()
        else:
            self.transport.close()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._disarm()
        super().handle_websocket_upgrade(event)
        protocol = self.transport.get_protocol()
        if isinstance(protocol, CtiWebSocketProtocol):
            protocol.slot, self._slot = self._slot, None

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state in _SENDING and not self.transport.is_closing():
            self.refusals(logging.INFO, "slow", "panel: closed a connection from %s: no complete request "
                          "within [http] header_timeout (%g s)",
                          self.client[0] if self.client else "?", self.header_timeout)
            self.transport.close()


def protocol_classes(guard: ConnectionGuard, header_timeout: float,
                     refusals: RateLimitedLog) -> tuple[type[CtiHttpProtocol], type[CtiWebSocketProtocol]]:
    """The two protocol classes of one server, bound to its counts and settings (uvicorn makes the instances)."""

    class PanelHttpProtocol(CtiHttpProtocol):
        pass

    class PanelWebSocketProtocol(CtiWebSocketProtocol):
        pass

    PanelHttpProtocol.guard = guard
    PanelHttpProtocol.header_timeout = header_timeout
    PanelHttpProtocol.refusals = refusals
    PanelWebSocketProtocol.refusals = refusals
    return PanelHttpProtocol, PanelWebSocketProtocol
