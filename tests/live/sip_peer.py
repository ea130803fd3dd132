"""A small PBX on loopback for the live tap's tests: a SIP registrar and a caller (UAC) over real UDP, RTP at real time.

It plays Asterisk's part: answers REGISTER with a digest challenge (``qop="auth"``, as PJSIP does) and checks the
answer (RFC 2617, computed here on its own, not with the tap's code), then 200 with the binding's expiry; or stays
silent, or refuses, as a test sets :attr:`FakePbx.mode`. It calls the tap like ``ChanSpy``'s ``Originate`` does:
INVITE with an SDP offer (PCMU and/or PCMA), ACK, RTP from a socket of its own, BYE; and answers the tap's BYE.
Nothing here is faked below the socket: every message crosses the kernel's UDP stack.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

from tests.conftest import UNIT

REALM = "asterisk"


def free_udp_ports(count: int) -> list[int]:
    """``count`` consecutive UDP ports free on loopback now (for the tap's RTP range)."""
    for _ in range(200):
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        first = probe.getsockname()[1]
        probe.close()
        if first + count > 65535:
            continue
        held: list[socket.socket] = []
        try:
            for port in range(first, first + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(s)
                s.bind(("127.0.0.1", port))
            return list(range(first, first + count))
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError("no free UDP port range")


def _headers(text: str) -> tuple[str, dict[str, list[str]], str]:
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    found: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        found.setdefault(name.strip().lower(), []).append(value.strip())
    return lines[0], found, body


@dataclass
class Register:
    """One REGISTER the registrar saw."""

    authorized: bool
    expires: int
    valid: bool


@dataclass
class PeerCall:
    """The PBX's side of one call to the tap."""

    pbx: FakePbx
    call_id: str
    from_tag: str
    to_header: str
    tap_addr: tuple[str, int]
    tap_rtp: tuple[str, int]
    payload_type: int
    rtp: socket.socket
    cseq: int = 1
    bye_received: asyncio.Event = field(default_factory=asyncio.Event)
    sent_packets: int = 0

    async def stream(self, payload: bytes, *, packet: int = 160, lose: Iterable[int] = (), jump_at: int | None = None,
                     jump: int = 0, stop_after: int | None = None, realtime: bool = True,
                     speed: float = 1.0) -> list[int]:
        """Send ``payload`` (G.711 bytes) as RTP, ``packet`` samples a packet, paced at real time (``speed`` times
        faster, the RTP clock unchanged); the packets numbered
        in ``lose`` are not sent, and from packet ``jump_at`` on the timestamp is ``jump`` samples further (sequence
        numbers run on). Returns the indices of the packets sent."""
        loop = asyncio.get_running_loop()
        lost = set(lose)
        seq = secrets.randbelow(1 << 16)
        ts = secrets.randbelow(1 << 32)
        ssrc = secrets.randbelow(1 << 32)
        sent: list[int] = []
        began = loop.time()
        count = (len(payload) + packet - 1) // packet
        for index in range(count if stop_after is None else min(count, stop_after)):
            if realtime:
                delay = began + index * packet / 8000 / speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            chunk = payload[index * packet:(index + 1) * packet]
            stamp = (ts + index * packet + (jump if jump_at is not None and index >= jump_at else 0)) & 0xFFFFFFFF
            header = bytes([0x80, self.payload_type]) + ((seq + index) & 0xFFFF).to_bytes(2, "big") + \
                stamp.to_bytes(4, "big") + ssrc.to_bytes(4, "big")
            if index not in lost:
                self.rtp.sendto(header + chunk, self.tap_rtp)
                sent.append(index)
                self.sent_packets += 1
        return sent

    async def bye(self) -> int:
        """Hang up from the PBX's side; the tap's answer's status."""
        self.cseq += 1
        request = (f"BYE sip:tap@{self.tap_addr[0]}:{self.tap_addr[1]} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP 127.0.0.1:{self.pbx.port};branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
                   f"From: <sip:pbx@127.0.0.1>;tag={self.from_tag}\r\n"
                   f"To: {self.to_header}\r\n"
                   f"Call-ID: {self.call_id}\r\nCSeq: {self.cseq} BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
        status, _ = await self.pbx.transaction(request, self.tap_addr, self.call_id, self.cseq)
        self.rtp.close()
        return status

    def close(self) -> None:
        self.rtp.close()


class FakePbx(asyncio.DatagramProtocol):
    """The registrar and caller; ``mode``: ``ok``, ``silent`` (answers no REGISTER), ``refuse`` (503 to each)."""

    def __init__(self, *, username: str = "cti-tap", password: str = "s3cret", expires: int = 60) -> None:
        self.username = username
        self.password = password
        self.expires = expires
        self.mode = "ok"
        self.registers: list[Register] = []
        self.options_answers: list[int] = []
        self.calls: dict[str, PeerCall] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self._waiting: dict[tuple[str, int], asyncio.Future[tuple[int, str]]] = {}
        self._nonce = secrets.token_hex(8)
        self.registered = asyncio.Event()

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0))
        self.transport = transport
        self.port = transport.get_extra_info("sockname")[1]
        return self.port

    def close(self) -> None:
        for call in self.calls.values():
            call.close()
        if self.transport is not None:
            self.transport.close()

    # -- the datagram side
    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        text = data.decode("utf-8", "replace")
        first, headers, _body = _headers(text)
        if first.startswith("SIP/2.0 "):
            status = int(first.split(" ")[1])
            call_id = headers.get("call-id", [""])[0]
            number = int(headers.get("cseq", ["0 X"])[0].split(" ")[0])
            if call_id.startswith("options-"):
                self.options_answers.append(status)
                return
            future = self._waiting.get((call_id, number))
            if future is not None and not future.done() and status >= 200:
                future.set_result((status, text))
            return
        method = first.split(" ")[0]
        if method == "REGISTER":
            self._register(headers, addr)
        elif method == "BYE":
            call = self.calls.get(headers.get("call-id", [""])[0])
            self._respond(headers, addr, 200, "OK")
            if call is not None:
                call.bye_received.set()

    def _respond(self, headers: dict[str, list[str]], addr: tuple[str, int], status: int, reason: str,
                 extra: str = "") -> None:
        assert self.transport is not None
        lines = [f"SIP/2.0 {status} {reason}"] + [f"Via: {v}" for v in headers.get("via", [])]
        lines += [f"From: {headers['from'][0]}", f"To: {headers['to'][0]};tag=pbx{secrets.token_hex(3)}",
                  f"Call-ID: {headers['call-id'][0]}", f"CSeq: {headers['cseq'][0]}"]
        self.transport.sendto(("\r\n".join(lines) + "\r\n" + extra + "Content-Length: 0\r\n\r\n").encode(), addr)

    def _register(self, headers: dict[str, list[str]], addr: tuple[str, int]) -> None:
        if self.mode == "silent":
            self.registers.append(Register(False, -1, False))
            return
        expires = int(headers.get("expires", ["3600"])[0])
        auth = headers.get("authorization")
        if self.mode == "refuse":
            self.registers.append(Register(auth is not None, expires, False))
            self._respond(headers, addr, 503, "Service Unavailable")
            return
        if auth is None:
            self.registers.append(Register(False, expires, False))
            self._respond(headers, addr, 401, "Unauthorized",
                          f'WWW-Authenticate: Digest realm="{REALM}",nonce="{self._nonce}",qop="auth",'
                          'algorithm=MD5\r\n')
            return
        valid = self._digest_ok(auth[0], "REGISTER")
        self.registers.append(Register(True, expires, valid))
        if not valid:
            self._respond(headers, addr, 401, "Unauthorized",
                          f'WWW-Authenticate: Digest realm="{REALM}",nonce="{self._nonce}",qop="auth"\r\n')
            return
        granted = min(expires, self.expires)
        contact = headers["contact"][0]
        self._respond(headers, addr, 200, "OK", f"Contact: {contact};expires={granted}\r\nExpires: {granted}\r\n")
        if expires:
            self.registered.set()

    def _digest_ok(self, header: str, method: str) -> bool:
        params = {k: v.strip('"') for k, v in re.findall(r'(\w+)=("[^"]*"|[^,\s]+)', header)}
        if params.get("username") != self.username or params.get("nonce") != self._nonce:
            return False
        md5 = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731
        ha1 = md5(f"{self.username}:{REALM}:{self.password}")
        ha2 = md5(f"{method}:{params.get('uri')}")
        if params.get("qop") == "auth":
            expected = md5(f"{ha1}:{self._nonce}:{params.get('nc')}:{params.get('cnonce')}:auth:{ha2}")
        else:
            expected = md5(f"{ha1}:{self._nonce}:{ha2}")
        return params.get("response") == expected

    async def transaction(self, request: str, addr: tuple[str, int], call_id: str, cseq: int,
                          timeout: float = 3 * UNIT) -> tuple[int, str]:
        """Send a request and wait for its final response: ``(status, text)``."""
        assert self.transport is not None
        future: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        self._waiting[(call_id, cseq)] = future
        self.transport.sendto(request.encode(), addr)
        try:
            async with asyncio.timeout(timeout):
                return await future
        finally:
            self._waiting.pop((call_id, cseq), None)

    def options(self, addr: tuple[str, int]) -> None:
        """An OPTIONS ping (Asterisk's qualify); the answer's status lands in :attr:`options_answers`."""
        assert self.transport is not None
        self.transport.sendto((
            f"OPTIONS sip:{self.username}@{addr[0]}:{addr[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{secrets.token_hex(8)}\r\n"
            f"From: <sip:pbx@127.0.0.1>;tag={secrets.token_hex(4)}\r\nTo: <sip:{self.username}@{addr[0]}>\r\n"
            f"Call-ID: options-{secrets.token_hex(6)}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n").encode(), addr)

    async def call(self, tap_addr: tuple[str, int], caller: str, *, payload_types: tuple[int, ...] = (0, 8, 101),
                   ) -> tuple[int, PeerCall | None]:
        """INVITE the tap as ``caller`` (its From user); on 200 OK, ACK and return the call ready to stream."""
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp.bind(("127.0.0.1", 0))
        rtp_port = rtp.getsockname()[1]
        call_id = f"{secrets.token_hex(8)}@127.0.0.1"
        tag = secrets.token_hex(4)
        names = {0: "PCMU/8000", 8: "PCMA/8000", 101: "telephone-event/8000", 9: "G722/8000", 3: "GSM/8000"}
        sdp = (f"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=Asterisk\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
               f"m=audio {rtp_port} RTP/AVP {' '.join(map(str, payload_types))}\r\n"
               + "".join(f"a=rtpmap:{pt} {names[pt]}\r\n" for pt in payload_types)
               + "a=ptime:20\r\na=sendrecv\r\n")
        request = (f"INVITE sip:{self.username}@{tap_addr[0]}:{tap_addr[1]} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
                   f'From: "{caller}" <sip:{caller}@127.0.0.1>;tag={tag}\r\n'
                   f"To: <sip:{self.username}@{tap_addr[0]}>\r\n"
                   f"Contact: <sip:asterisk@127.0.0.1:{self.port}>\r\n"
                   f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
                   f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}")
        status, text = await self.transaction(request, tap_addr, call_id, 1)
        if status != 200:
            rtp.close()
            return status, None
        _, headers, body = _headers(text)
        port = int(re.search(r"m=audio (\d+)", body).group(1))  # type: ignore[union-attr]
        host = re.search(r"c=IN IP4 (\S+)", body).group(1)  # type: ignore[union-attr]
        chosen = int(re.search(r"m=audio \d+ RTP/AVP (\d+)", body).group(1))  # type: ignore[union-attr]
        assert self.transport is not None
        to_header = headers["to"][0]
        self.transport.sendto((f"ACK sip:tap@{tap_addr[0]}:{tap_addr[1]} SIP/2.0\r\n"
                               f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{secrets.token_hex(8)}\r\n"
                               f"From: <sip:{caller}@127.0.0.1>;tag={tag}\r\nTo: {to_header}\r\n"
                               f"Call-ID: {call_id}\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
                               ).encode(), tap_addr)
        call = PeerCall(self, call_id, tag, to_header, tap_addr, (host, port), chosen, rtp)
        self.calls[call_id] = call
        return status, call
